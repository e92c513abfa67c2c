"""Each exit's attention decoder of an early-exit AED as an ONNX graph for attention rescoring
(decode/attention_rescoring.py, deploy/rescoring.py): N hypotheses scored teacher-forced in one
pass, so no KV cache and no step loop are needed.

  decoder_exit{L}.onnx   (hidden (B, T, D): the segment's raw `hidden_out`, lengths (B,),
                          hyp_utt (N,): each hypothesis' batch row, ys (N, U+2): <sos> tokens
                          <eos> padded with <eos>, ys_lens (N,): tokens + 1)
                         -> scores (N,): log p_att(tokens <eos>)

The graph applies the exit's norm itself, so it reads the segments' carry as it is. Masks are
built from lengths with `valid_mask` (espnet's make_pad_mask reads a length as a Python int,
which a trace would freeze); tests and the export check the graph against
EarlyExitAED.hypothesis_log_probs.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from ee_asr.common.errors import UserError
from ee_asr.exits.rescore_rule import best_index
from ee_asr.export.onnx_export import _export, quantize_int8
from ee_asr.models.masks import valid_mask

# the manifest's rescoring options when the export is given none (the runtime's defaults)
DEFAULT_RESCORING = {"nbest_size": 10, "ctc_weight": 0.5, "length_bonus": 0.0}
INPUTS, OUTPUTS = ["hidden", "lengths", "hyp_utt", "ys", "ys_lens"], ["scores"]
AXES = {"hidden": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "hyp_utt": {0: "hyps"},
        "ys": {0: "hyps", 1: "steps"}, "ys_lens": {0: "hyps"}, "scores": {0: "hyps"}}


class DecoderScorer(torch.nn.Module):
    """The traceable teacher-forced scorer of one exit (the forward of espnet's TransformerDecoder)."""

    def __init__(self, model, exit_index):
        super().__init__()
        self.norm = model.encoder.exit_norms[exit_index]
        self.decoder = model.decoder(exit_index)

    def forward(self, hidden, lengths, hyp_utt, ys, ys_lens):
        dec = self.decoder
        memory = self.norm(hidden)[hyp_utt]
        memory_mask = valid_mask(lengths[hyp_utt], memory.size(1))[:, None, :]
        ys_in, ys_out = ys[:, :-1], ys[:, 1:]
        steps = ys_in.size(1)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=ys.device).tril()[None]
        tgt_mask = valid_mask(ys_lens, steps)[:, None, :] & causal
        x = dec.embed(ys_in)
        for layer in dec.decoders:
            x, tgt_mask, memory, memory_mask = layer(x, tgt_mask, memory, memory_mask)
        if dec.normalize_before:
            x = dec.after_norm(x)
        logp = dec.output_layer(x).log_softmax(-1).gather(-1, ys_out[:, :, None]).squeeze(-1)
        return (logp * valid_mask(ys_lens, steps).to(logp.dtype)).sum(-1)


def example_inputs(model, seed, batch=2, frames=(13, 9), hyp_lens=(3, 0, 5)):
    """Random raw hidden states and hypotheses (one utterance gets two) for tracing and parity."""
    g = torch.Generator().manual_seed(seed)
    d = model.encoder.output_size()
    hidden = torch.randn(batch, max(frames), d, generator=g)
    lengths = torch.tensor(frames[:batch])
    hyps = [torch.randint(1, model.vocab_size - 1, (n,), generator=g).tolist() for n in hyp_lens]
    hyp_utt = torch.tensor([k % batch for k in range(len(hyps))])
    ys, ys_lens = model.hypothesis_ys(hyps)
    return hidden, lengths, hyp_utt, ys, ys_lens


def _check_model(model):
    if not hasattr(model, "decoders"):
        raise UserError("only models with decoders (model: aed_ee) have decoders to export")
    if type(model.decoder(0)).__name__ != "TransformerDecoder":
        raise UserError(f"decoder export handles espnet's TransformerDecoder, not {type(model.decoder(0)).__name__}")


def export_decoders(model, out_dir, int8=False):
    """Trace every exit's scorer to `out_dir/decoder_exit{L}.onnx` (and `.int8.onnx`); return
    the manifest's decoder list."""
    _check_model(model)
    model = model.eval()
    args = example_inputs(model, 0)
    out = []
    for i, layer in enumerate(model.encoder.exit_layers):
        path = Path(out_dir) / f"decoder_exit{layer}.onnx"
        logging.info("exporting exit %d's decoder to %s", layer, path)
        _export(DecoderScorer(model, i).eval(), args, path, INPUTS, OUTPUTS, AXES)
        entry = {"exit": layer, "fp32": path.name, "inputs": INPUTS, "outputs": OUTPUTS}
        if int8:
            entry["int8"] = path.name.replace(".onnx", ".int8.onnx")
            quantize_int8(path, Path(out_dir) / entry["int8"])
        out.append(entry)
    return out


def check_decoder_parity(model, out_dir, decoders, tolerance=1e-3):
    """Score random hypotheses (other lengths than the trace's) with PyTorch and each fp32 graph;
    UserError if a score differs by more than `tolerance` nats. Returns the largest per exit."""
    from ee_asr.deploy.sessions import load_session, session_options

    opts = session_options(1)
    hidden, lengths, hyp_utt, ys, ys_lens = example_inputs(model, 1, 3, (17, 11, 6), (4, 1, 7, 0, 2))
    diffs = {}
    for i, entry in enumerate(decoders):
        normed = model.encoder.exit_norms[i](hidden)
        ref = model.hypothesis_log_probs(i, normed, lengths, hyp_utt, ys, ys_lens).numpy()
        sess = load_session(Path(out_dir) / entry["fp32"], opts)
        feeds = dict(zip(INPUTS, (hidden.numpy(), lengths.numpy(), hyp_utt.numpy(), ys.numpy(), ys_lens.numpy())))
        got = sess.run(None, feeds)[0]
        diffs[entry["exit"]] = worst = float(np.abs(got - ref).max())
        if worst > tolerance:
            raise UserError(f"exported decoder of exit {entry['exit']} differs from PyTorch by {worst:.2e} nats "
                            f"(tolerance {tolerance:g})")
    return diffs


def compare_rescoring_int8(onnx_dir, utts, bpemodel, **rescoring):
    """CER of attention rescoring at every exit, fp32 segments and decoders against int8 ones, on
    [(utt, feats, text)]; `rescoring`: OnnxRescoring's options. Rows as int8_check.compare_int8's."""
    from ee_asr.data.tokenizer import Tokenizer
    from ee_asr.deploy.onnx_backend import onnx_engine
    from ee_asr.export.int8_check import cer_table, greedy_at_every_exit

    tokenizer = Tokenizer(bpemodel)
    fp32, int8 = onnx_engine(onnx_dir, rescoring=rescoring), onnx_engine(onnx_dir, int8=True, rescoring=rescoring)
    exits = fp32.exit_layers
    logging.info("int8 check of attention rescoring: %d utterances at every exit, fp32 then int8", len(utts))
    h32, h8 = greedy_at_every_exit(fp32, utts), greedy_at_every_exit(int8, utts)
    c32, c8 = cer_table(utts, h32, tokenizer, exits), cer_table(utts, h8, tokenizer, exits)
    return [{"exit": e, "cer_fp32": round(c32[e], 2), "cer_int8": round(c8[e], 2),
             "cer_change": round(c8[e] - c32[e], 2),
             "same_output_share": round(sum(h32[k][e] == h8[k][e] for k, _, _ in utts) / max(len(utts), 1), 4)}
            for e in exits]


def rescoring_parity_on_data(model, onnx_dir, utts, batch_size=16, **rescoring):
    """PyTorch's attention rescoring against the fp32 graphs' on [(utt, feats, text)], padded
    batches of `batch_size`: per exit the largest |attention score difference| over hypotheses
    both N-bests share and the share of utterances whose rescored output is the same."""
    from ee_asr.decode.attention_rescoring import AttentionRescoring
    from ee_asr.deploy.onnx_backend import OnnxBackend, pad
    from ee_asr.deploy.rescoring import OnnxRescoring

    backend = OnnxBackend(onnx_dir)
    ours = OnnxRescoring(backend, **rescoring)
    ref = AttentionRescoring(model, **rescoring)
    layers = list(model.encoder.exit_layers)
    worst, same = dict.fromkeys(layers, 0.0), dict.fromkeys(layers, 0)
    with torch.no_grad():
        for b in range(0, len(utts), batch_size):
            batch = pad([f for _, f, _ in utts[b:b + batch_size]])
            outs, olens = model.exit_hidden(torch.from_numpy(batch["feats"]), torch.from_numpy(batch["feats_lens"]))
            carry = batch
            for k, (layer, hidden) in enumerate(outs):
                carry = backend.advance(carry, k)
                a = ours.rescore(k, carry["hidden"], carry["lengths"], carry["log_probs"])
                r = ref.rescore(k, hidden, olens, model.head(k).log_softmax(hidden).numpy())
                for x, y in zip(a, r):
                    att = {h: s for h, _, s, _ in y}
                    diffs = [abs(s - att[h]) for h, _, s, _ in x if h in att]
                    worst[layer] = max([worst[layer]] + diffs)
                    same[layer] += x[best_index([t for *_, t in x])][0] == y[best_index([t for *_, t in y])][0]
    logging.info("rescoring parity on %d utterances: %s", len(utts),
                 ", ".join(f"exit {e}: {worst[e]:.1e}, {same[e]}/{len(utts)} same" for e in layers))
    return [{"exit": e, "max_abs_att_diff": worst[e], "same_output_share": round(same[e] / max(len(utts), 1), 4),
             "utterances": len(utts)} for e in layers]
