"""Options and loading shared by the tools that decode with a trained experiment."""

from ee_asr.common.cli import add_renamed_options, setup_logging
from ee_asr.common.errors import UserError

NBEST_TOKEN_BEAM = 5  # the N-best posterior's: r = 0.999 with 8 on the demo, in 70% of the time


def add_model_args(parser):
    """Which trained experiment to load and how each exit searches: decode, decode_policy and
    transcribe share these, so a model decodes the same way whichever tool runs it."""
    parser.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    parser.add_argument("--model-file", default="model.pth")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--search", choices=["greedy", "joint", "rescore"], default=None,
                        help="per exit: greedy CTC, joint CTC/attention beam (--beam-size), or the CTC N-best "
                             "rescored by the exit's decoder (--rescore-*); default: joint if --beam-size > 0")
    parser.add_argument("--rescore-nbest", type=int, default=10, help="rescoring: CTC hypotheses per utterance")
    parser.add_argument("--rescore-weight", type=float, default=0.5,
                        help="rescoring: CTC weight (the decoder's is 1 minus it)")
    parser.add_argument("--length-bonus", type=float, default=0.0, help="rescoring: score added per token")
    parser.add_argument("--rescore-skip", default=None, metavar="SCORE:THRESHOLD",
                        help="rescoring: keep the greedy CTC hypothesis where this confidence score "
                             "(e.g. seq_posterior:0.9) reaches the threshold")
    parser.add_argument("--beam-size", type=int, default=0,
                        help="joint CTC/attention beam search of this width at each exit (models with "
                             "decoders); 0: greedy CTC")
    parser.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight in the joint beam search")
    parser.add_argument("--pre-beam-ratio", type=float, default=1.5,
                        help="joint beam search: CTC scores only the decoder's likeliest ratio x beam-size next "
                             "tokens (espnet's 1.5); 0: CTC scores every token")
    parser.add_argument("--penalty", type=float, default=0.0, help="length bonus in the joint beam search")
    parser.add_argument("--maxlenratio", type=float, default=0.0,
                        help="joint beam search: at most this many tokens per encoder frame; 0: end detection")
    parser.add_argument("--token-beam", type=int, default=0,
                        help="tokens tried per frame (the likeliest) by a CTC beam search: the N-best posterior's, "
                             "or the LM beam's; 0: each search's default (5 and 20)")
    add_renamed_options(parser, {"--exp": "--exp-dir", "--data": "--data-dir", "--output-dir": "--output",
                                 "--nbest-beam": "--nbest-size", "--beam": "--nbest-size",
                                 "--token-beam-size": "--token-beam"})


def add_inference_args(parser):
    """add_model_args plus the dump dir to decode and its batching."""
    add_model_args(parser)
    parser.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    parser.add_argument("--batch-bins", type=int, default=40000, help="padded frames per batch")


def make_search(args, model, nbest_size, classifier=None):
    """Greedy CTC (N-best from a CTC beam search keeping `nbest_size` hypotheses) or joint beam
    search; `classifier`: the experiment's exit classifier, for the learned policy."""
    from ee_asr.decode.exit_search import ExitSearch  # torch and espnet: not needed for --help

    search = getattr(args, "search", None)
    if search is not None and (search == "joint") != (args.beam_size > 0):
        raise UserError(f"--search {search} with --beam-size {args.beam_size}: the joint beam needs a width, "
                        "the other searches none")
    if search == "rescore":
        from ee_asr.decode.attention_rescoring import AttentionRescoring, RescoringExitSearch

        ctc = ExitSearch(model, nbest_size, token_beam=args.token_beam or NBEST_TOKEN_BEAM, classifier=classifier)
        rescoring = AttentionRescoring(model, args.rescore_nbest, args.rescore_weight, args.length_bonus,
                                       args.token_beam or NBEST_TOKEN_BEAM, parse_skip(args.rescore_skip))
        return RescoringExitSearch(ctc, rescoring)
    return ExitSearch(model, nbest_size, args.beam_size, args.ctc_weight, args.penalty, args.maxlenratio,
                      args.token_beam or NBEST_TOKEN_BEAM, classifier, args.pre_beam_ratio)


def parse_skip(spec):
    """`seq_posterior:0.9` -> ("seq_posterior", 0.9); None -> None."""
    if spec is None:
        return None
    name, sep, threshold = spec.partition(":")
    try:
        return name, float(threshold)
    except ValueError:
        raise UserError(f"--rescore-skip {spec!r}: expected SCORE:THRESHOLD, e.g. seq_posterior:0.9") from None


def load_for_inference(args):
    """Set threads and logging, then load the model and resolved config named by `args`."""
    import torch

    from ee_asr.models.load import load_trained

    setup_logging()
    torch.set_num_threads(args.num_threads)
    return load_trained(args.exp_dir, args.model_file, args.device)
