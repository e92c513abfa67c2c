"""Share a dump dir's utterances among decoding jobs: `python -m ee_asr.bin.split_decode
--data-dir dump/test --batch-bins 40000 --nj 4 --output exp/<tag>/decode_test/split`.

Writes `<output>/utts.1 .. utts.N` (N = min(--nj, batches)) and prints N. Each job gets whole
batches of the full set, so `decode --utt-list <output>/utts.J` computes every utterance exactly
as a single job would; `ee_asr.bin.merge_decodes` joins the jobs' outputs.
"""

import argparse
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_lengths
from ee_asr.decode.split import split_batches


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="dump dir with utt2num_frames")
    p.add_argument("--batch-bins", type=int, required=True, help="the decoding jobs' --batch-bins")
    p.add_argument("--nj", type=int, required=True, help="at most this many jobs")
    p.add_argument("--output", required=True, help="dir for utts.1 .. utts.N")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.nj < 1 or args.batch_bins < 1:
        raise UserError(f"--nj and --batch-bins must be positive, not {args.nj} and {args.batch_bins}")
    lengths = read_lengths(Path(args.data_dir) / "utt2num_frames")
    if not lengths:
        raise UserError(f"{args.data_dir}/utt2num_frames: no utterances")
    jobs = split_batches(lengths, args.batch_bins, args.nj)
    out = Path(args.output)
    for stale in out.glob("utts.*"):  # a list left by an earlier split into more jobs
        stale.unlink()
    for j, utts in enumerate(jobs, 1):
        atomic_write_text(out / f"utts.{j}", "".join(f"{u}\n" for u in utts))
    print(len(jobs))


if __name__ == "__main__":
    run_main(main)
