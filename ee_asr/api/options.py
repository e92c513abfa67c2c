"""Options and loading shared by the tools that decode with a trained experiment: one name and
one default per idea (the N-best size K, the layer cap, the searches), and the exit engine they ask for."""

from ee_asr.common.cli import add_renamed_options, setup_logging
from ee_asr.common.errors import UserError

DEFAULT_NBEST_SIZE = 10


def positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


# How each exit searches, one entry per option: (flag, argparse keywords).
SEARCH_OPTIONS = (
    ("--search", {"choices": ["greedy", "joint", "rescore"], "default": None,
                  "help": "per exit: greedy CTC, joint CTC/attention beam (--beam-size), or the CTC N-best rescored by "
                          "the exit's decoder (--rescore-*); default: joint if --beam-size > 0"}),
    ("--rescore-nbest", {"type": positive_int, "default": 10,
                         "help": "rescoring: the CTC hypotheses per utterance the decoder scores"}),
    ("--rescore-weight", {"type": float, "default": 0.5,
                          "help": "rescoring: the CTC score's weight (the decoder's is 1 minus it); the joint beam's "
                                  "is --ctc-weight (the demo AED: 0.7 and 0.5, each chosen on dev)"}),
    ("--length-bonus", {"type": float, "default": 0.0, "help": "score added per token, joint beam and rescoring"}),
    ("--rescore-skip", {"default": None, "metavar": "SCORE:THRESHOLD",
                        "help": "rescoring: keep the greedy CTC hypothesis where this confidence score "
                                "(e.g. seq_posterior:0.9) reaches the threshold"}),
    ("--beam-size", {"type": int, "default": 0, "help": "joint CTC/attention beam search of this width at each "
                                                         "exit (models with decoders); 0: greedy CTC"}),
    ("--ctc-weight", {"type": float, "default": 0.3, "help": "CTC weight in the joint beam search"}),
    ("--pre-beam-ratio", {"type": float, "default": 1.5,
                          "help": "joint beam search: CTC scores only the decoder's likeliest ratio x beam-size next "
                                  "tokens (espnet's 1.5); 0: CTC scores every token"}),
    ("--maxlenratio", {"type": float, "default": 0.0,
                       "help": "joint beam search: at most this many tokens per encoder frame; 0: end detection"}),
    ("--token-beam", {"type": int, "default": 0,
                      "help": "tokens tried per frame (the likeliest) by a CTC beam search: the N-best posterior's, "
                              "or the LM beam's; 0: each search's default (5 and 20)"}),
)


def add_model_args(parser):
    """Which trained experiment to load and how each exit searches: decode, decode_policy and
    transcribe share these, so a model decodes the same way whichever tool runs it."""
    parser.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    parser.add_argument("--model-file", default="model.pth")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=1)
    for flag, kw in SEARCH_OPTIONS:
        parser.add_argument(flag, **kw)
    add_renamed_options(parser, {"--exp": "--exp-dir", "--data": "--data-dir", "--output-dir": "--output",
                                 "--nbest-beam": "--nbest-size", "--beam": "--nbest-size",
                                 "--token-beam-size": "--token-beam", "--thresholds": "--threshold",
                                 "--penalty": "--length-bonus"})


def add_inference_args(parser):
    """add_model_args and add_exit_args plus the dump dir to decode and its batching."""
    add_model_args(parser)
    add_exit_args(parser)
    parser.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    parser.add_argument("--batch-bins", type=int, default=40000, help="padded frames per batch")


def add_exit_args(parser, policy_required=False):
    """The N-best size K and the layer cap, as every decoding tool names them."""
    parser.add_argument("--nbest-size", type=positive_int, default=DEFAULT_NBEST_SIZE,
                        help="K, the hypotheses behind the N-best posterior (the nbest policy's score; the paper "
                             "used 300; cost grows with K, seqpost is its K -> infinity limit at no beam cost)")
    parser.add_argument("--max-layers", type=positive_int, default=None,
                        help="layer cap: no utterance goes past the deepest exit within it (any policy)")
    parser.add_argument("--blank-skip-threshold", type=float, default=None,
                        help="drop the frames whose blank posterior at --blank-skip-after is above this from the "
                             "layers above (exits/blank_skip.py; any policy); default: no skipping")
    parser.add_argument("--blank-skip-after", type=positive_int, nargs="+", default=None, metavar="LAYER",
                        help="the exit layer(s) after which blank frames are dropped (with --blank-skip-threshold)")


def blank_skip_from_args(args):
    """(after_layers, threshold) for torch_engine/onnx_engine, or None without --blank-skip-threshold."""
    from ee_asr.common.errors import UserError

    if args.blank_skip_threshold is None:
        if args.blank_skip_after:
            raise UserError("--blank-skip-after needs --blank-skip-threshold")
        return None
    if not args.blank_skip_after:
        raise UserError("--blank-skip-threshold needs --blank-skip-after LAYER (an exit below the last)")
    return args.blank_skip_after, args.blank_skip_threshold


def blank_skip_suffix(args):
    """Decode dirs with blank skipping: `_skip<after>_<threshold>`, beside those without."""
    skip = blank_skip_from_args(args)
    return "" if skip is None else f"_skip{'-'.join(map(str, skip[0]))}_{skip[1]:g}"


def search_name(args):
    """--search, or what the other options imply: joint with --beam-size > 0, else greedy (the LM
    beam with --lm, whose width --beam-size then is); UserError where they disagree."""
    lm = getattr(args, "lm", None)
    name = args.search or ("joint" if args.beam_size > 0 and not lm else "greedy")
    if (name == "joint") != (args.beam_size > 0) and not (lm and name != "joint"):
        raise UserError(f"--search {name} with --beam-size {args.beam_size}: the joint beam needs a width, "
                        "the other searches none")
    if name == "joint" and lm:
        raise UserError("--lm with --search joint: the LM beam is a CTC search (give --search greedy or rescore)")
    return name


def engine_from_args(args, model, config, classifier=None):
    """The PyTorch exit engine the options ask for: greedy CTC (or the word LM beam with --lm),
    joint CTC/attention beam search (--beam-size > 0, models with decoders) or attention rescoring
    of the CTC (or LM) N-best (--search rescore); `classifier`: the experiment's exit classifier."""
    from ee_asr.api.lm_options import lm_search_from_args
    from ee_asr.decode.torch_backend import NBEST_TOKEN_BEAM, torch_engine  # torch: not needed for --help

    name, token_beam = search_name(args), args.token_beam or NBEST_TOKEN_BEAM
    if name == "rescore":
        from ee_asr.decode.attention_rescoring import AttentionRescoring

        search = AttentionRescoring(model, args.rescore_nbest, args.rescore_weight, args.length_bonus, token_beam,
                                    parse_skip(args.rescore_skip), lm_search_from_args(args, config, rescoring=True))
    elif name == "joint":
        from ee_asr.decode.joint_beam import JointBeamSearch

        search = JointBeamSearch(model, args.beam_size, args.ctc_weight, args.length_bonus, args.maxlenratio,
                                 pre_beam_ratio=args.pre_beam_ratio)
    else:
        search = lm_search_from_args(args, config)
    return torch_engine(model, args.nbest_size, token_beam, classifier, search=search,
                        blank_skip=blank_skip_from_args(args))


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
