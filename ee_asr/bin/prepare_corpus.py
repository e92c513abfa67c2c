"""Download (resuming, checksum-verified) and prepare a corpus into Kaldi data dirs.

  python -m ee_asr.bin.prepare_corpus librispeech --datadir downloads --data data --train 100
  python -m ee_asr.bin.prepare_corpus tedlium3 --datadir downloads --data data
  python -m ee_asr.bin.prepare_corpus an4 --datadir downloads --data data
"""

import argparse

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.corpora import an4, librispeech, tedlium3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=["librispeech", "tedlium3", "an4"])
    p.add_argument("--datadir", required=True, help="where archives are downloaded and extracted")
    p.add_argument("--data", default="data", help="where the Kaldi data dirs are written")
    p.add_argument("--download", default="true", choices=["true", "false"],
                   help="false: use archives already in --datadir, never download")
    p.add_argument("--mirror", default=None, help="fetch the archives from this URL prefix instead")
    p.add_argument("--train", default="960", help="librispeech: training hours, 100 or 960")
    args = p.parse_args(argv)
    setup_logging()
    download = args.download == "true"
    if args.corpus == "librispeech":
        librispeech.prepare(args.datadir, args.data, args.train, download, args.mirror)
    elif args.corpus == "tedlium3":
        tedlium3.prepare(args.datadir, args.data, download, args.mirror)
    else:
        an4.prepare(args.datadir, args.data, download, args.mirror)


if __name__ == "__main__":
    run_main(main)
