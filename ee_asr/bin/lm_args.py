"""Options of LM beam decoding (a word n-gram LM at every exit), shared by the decoding tools."""

import logging

from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.lm_beam import DEFAULT_BEAM_SIZE, LMBeamSearch, LMExitSearch

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


def make_lm_search(args, model, config, nbest_size, classifier=None):
    """The LM beam search as an ExitSearch, or None without --lm; `classifier`: the experiment's
    exit classifier, for the learned policy (it reads the CTC scores, not the beam's)."""
    if not args.lm:
        return None
    from ee_asr.decode.exit_search import ExitSearch  # torch: transcribe --backend onnx reads these options without it

    beam = args.beam_size or DEFAULT_BEAM_SIZE
    if getattr(args, "search", None) == "rescore":
        from ee_asr.bin.inference_args import parse_skip
        from ee_asr.decode.attention_rescoring import AttentionRescoring, RescoringExitSearch

        lm = LMBeamSearch(Tokenizer(config["bpemodel"]), args.lm, args.lm_weight, args.word_score, DEFAULT_BEAM_SIZE,
                          args.token_beam or LM_TOKEN_BEAM, args.beam_threshold)
        logging.info("attention rescoring of the LM beam's %d-best", args.rescore_nbest)
        rescoring = AttentionRescoring(model, args.rescore_nbest, args.rescore_weight, args.length_bonus,
                                       skip=parse_skip(args.rescore_skip), lm_search=lm)
        return RescoringExitSearch(ExitSearch(model, nbest_size, classifier=classifier), rescoring)
    logging.info("LM beam of width %d (the N-best posterior from its top %d)", beam, nbest_size)
    lm = LMBeamSearch(Tokenizer(config["bpemodel"]), args.lm, args.lm_weight, args.word_score, beam,
                      args.token_beam or LM_TOKEN_BEAM, args.beam_threshold, nbest_size)
    return LMExitSearch(ExitSearch(model, 0, classifier=classifier), lm)
