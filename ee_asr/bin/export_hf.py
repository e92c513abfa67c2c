"""Export a trained wav2vec2_ee experiment's encoder as a Hugging Face checkpoint dir, to fine-tune
from with `--pretrained DIR`:  python -m ee_asr.bin.export_hf --exp-dir exp/<tag> --output DIR
"""

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.models.load import load_trained


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--model-file", default="model.pth")
    p.add_argument("--output", required=True, help="directory to write (must not exist)")
    args = p.parse_args(argv)
    setup_logging()
    out = Path(args.output)
    if out.exists():
        raise UserError(f"{out} already exists")
    model, _ = load_trained(args.exp_dir, args.model_file)
    if not hasattr(model.encoder, "save_pretrained"):
        raise UserError(f"{args.exp_dir}: encoder {type(model.encoder).__name__} has no Hugging Face form "
                        f"(wav2vec2_ee has)")
    make_output_dir(out.parent)
    # written beside the target and renamed, so a half-written export never looks complete
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.encoder.save_pretrained(tmp)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logging.info("wrote %s", out)


if __name__ == "__main__":
    run_main(main)
