"""Options of LM beam decoding (a word n-gram LM at every exit), shared by the decoding tools."""

import logging

from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.lm_beam import DEFAULT_BEAM_SIZE, LMBeamSearch

# tokens tried per frame (--token-beam 0): all 1,000 word pieces were over 100 times slower for the same WER
LM_TOKEN_BEAM = 20


def add_lm_args(parser):
    g = parser.add_argument_group("word n-gram LM beam (ee_asr.bin.build_lm makes the LM)")
    g.add_argument("--lm", default=None, help="ARPA LM: the exits' hypotheses from a lexicon + LM CTC beam "
                   f"(its width: --beam-size, {DEFAULT_BEAM_SIZE} when that is 0)")
    g.add_argument("--lm-weight", type=float, default=1.0, help="weight of the LM's log10 score")
    g.add_argument("--word-score", type=float, default=2.0,
                   help="score added per word (a length bonus); 1.0 and 2.0 were best on the mini_tts dev set")
    g.add_argument("--beam-threshold", type=float, default=20.0,
                   help="drop hypotheses this far below the best (log score)")


def lm_output_suffix(args):
    """Decode dirs of LM beams are `decode_<set>_lm`, beside the greedy `decode_<set>`."""
    return "_lm" if args.lm else ""


def lm_search_from_args(args, config, rescoring=False):
    """The LM beam search (a search of the exit engine), or None without --lm; `rescoring`: the beam
    that feeds attention rescoring its N-best (of the default width, no posterior of its own)."""
    if not args.lm:
        return None
    beam = DEFAULT_BEAM_SIZE if rescoring else args.beam_size or DEFAULT_BEAM_SIZE
    nbest_size = 0 if rescoring else args.nbest_size
    logging.info("LM beam of width %d%s", beam, " (rescored)" if rescoring else f", N-best posterior K={nbest_size}")
    return LMBeamSearch(Tokenizer(config["bpemodel"]), args.lm, args.lm_weight, args.word_score, beam,
                        args.token_beam or LM_TOKEN_BEAM, args.beam_threshold, nbest_size)
