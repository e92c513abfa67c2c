"""Download (resuming, checksum-verified) and prepare a corpus into Kaldi data dirs.

  python -m ee_asr.bin.prepare_corpus librispeech --download-dir downloads --data-dir data --train 100
  python -m ee_asr.bin.prepare_corpus tedlium3 --download-dir downloads --data-dir data
  python -m ee_asr.bin.prepare_corpus an4 --download-dir downloads --data-dir data
"""

import argparse

from ee_asr.common.cli import add_renamed_options, run_main, setup_logging
from ee_asr.corpora import an4, librispeech, tedlium3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=["librispeech", "tedlium3", "an4"])
    p.add_argument("--download-dir", required=True, help="where archives are downloaded and extracted")
    p.add_argument("--data-dir", default="data", help="where the Kaldi data dirs are written")
    p.add_argument("--download", default="true", choices=["true", "false"],
                   help="false: use archives already in --download-dir, never download")
    p.add_argument("--mirror", default=None, help="fetch the archives from this URL prefix instead")
    p.add_argument("--train", default="960", help="librispeech: training hours, 100 or 960")
    add_renamed_options(p, {"--datadir": "--download-dir", "--data": "--data-dir"})
    args = p.parse_args(argv)
    setup_logging()
    download = args.download == "true"
    if args.corpus == "librispeech":
        librispeech.prepare(args.download_dir, args.data_dir, args.train, download, args.mirror)
    elif args.corpus == "tedlium3":
        tedlium3.prepare(args.download_dir, args.data_dir, download, args.mirror)
    else:
        an4.prepare(args.download_dir, args.data_dir, download, args.mirror)


if __name__ == "__main__":
    run_main(main)
