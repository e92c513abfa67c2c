"""Write the mini corpus in a real corpus's own archives and layout, for its real recipe to run on:

  python -m ee_asr.bin.make_replica librispeech --output replica/librispeech --size tiny
  cd egs/librispeech/conformer_ctc_ee
  ./run.sh --local-data-opts "--download-dir $PWD/../../../replica/librispeech --download false" ...

librispeech: the seven subset archives of openslr 12 (FLAC, trans.txt, SPEAKERS.TXT, CHAPTERS.TXT);
tedlium3: TEDLIUM_release-3.tgz of openslr 51 (talks as SPHERE files cut by STM segments).
Clips are kept in <output>/.clips, so a rerun only packs again.
"""

import argparse
import logging

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.corpora import librispeech_replica, tedlium3_replica

REPLICAS = {"librispeech": librispeech_replica, "tedlium3": tedlium3_replica}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=sorted(REPLICAS))
    p.add_argument("--output", required=True, help="the download dir to write the archives into")
    p.add_argument("--size", choices=["tiny", "small"], default="tiny",
                   help="tiny: ~100 utterances (tests); small: ~1,000")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2, help="synthesis processes")
    args = p.parse_args(argv)
    setup_logging()
    counts = REPLICAS[args.corpus].make(args.output, args.size, args.seed, args.nj)
    logging.info("wrote %s", counts)


if __name__ == "__main__":
    run_main(main)
