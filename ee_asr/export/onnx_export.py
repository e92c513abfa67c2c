"""Write an early-exit Conformer-CTC model as ONNX graphs, one per exit segment, with a manifest.

Layout of the output dir (read by ee_asr/deploy/, which needs nothing else):
  exit{L}.onnx        segment ending at exit L, fp32 (segment 1 takes features, the others the
                      hidden state, positional embedding and lengths of the segment before)
  exit{L}.int8.onnx   the same, MatMul weights quantised to int8 per output channel (--int8)
  manifest.json       exit layers, segment files and their inputs/outputs, feature options,
                      min/max input frames, token model name and sha256, default thresholds
  <bpe>.model         the sentencepiece model, copied
  exit_classifier.json  the experiment's exit classifier (the learned policy), copied when it has one

Graphs are traced with torch.onnx.export(dynamo=False), opset 17, batch and time axes dynamic.
"""

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from ee_asr.common.atomic import atomic_path, atomic_write_text
from ee_asr.common.digest import file_sha256
from ee_asr.common.errors import UserError
from ee_asr.data.fbank import SAMPLE_RATE, make_fbank
from ee_asr.exits.exit_classifier import CLASSIFIER_FILE, ExitClassifier
from ee_asr.export.segments import FirstSegment, NextSegment, exportable_copy, has_pos_emb
from ee_asr.models.exit_encoder import transcribe_min_frames
from ee_asr.models.subsampling import KERNEL_STRIDES, subsampled_length
from ee_asr.models.wav2vec2_ee import Wav2Vec2EEEncoder
from ee_asr.score.calibration import CALIBRATION_FILE

OPSET = 17
MANIFEST = "manifest.json"
# Default for the longest input: espnet's positional table holds 5000 positions, so the
# PyTorch model was built for up to 4999 subsampled frames (it recomputes a longer table if
# asked). The exported graphs compute the embedding for any length; attention memory grows with
# the square of the length, so the runtime refuses longer inputs than the manifest's max_frames.
MAX_SUBSAMPLED_FRAMES = 4999
DEFAULT_THRESHOLDS = {"entropy": 0.05, "maxprob": 0.95, "nbest": 0.8}
FIRST_INPUTS, FIRST_OUTPUTS = ["feats", "feats_lens"], ["log_probs", "hidden_out", "pos_emb", "lengths"]
NEXT_INPUTS, NEXT_OUTPUTS = ["hidden", "pos_emb", "lengths"], ["log_probs", "hidden_out"]
AXES = {"feats": {0: "batch", 1: "frames"}, "feats_lens": {0: "batch"}, "log_probs": {0: "batch", 1: "time"},
        "hidden": {0: "batch", 1: "time"}, "hidden_out": {0: "batch", 1: "time"}, "pos_emb": {1: "positions"},
        "lengths": {0: "batch"}}


def is_raw(encoder):
    return isinstance(encoder, Wav2Vec2EEEncoder)


def subsampling_factor(encoder):
    if is_raw(encoder):
        return int(np.prod(encoder.model.config.conv_stride))
    layer = encoder._input_layer or "conv2d"
    factor = 1
    for _, s in KERNEL_STRIDES[layer]:
        factor *= s
    return factor


def max_input_frames(encoder, max_subsampled=MAX_SUBSAMPLED_FRAMES):
    """The most input frames whose subsampled length is at most `max_subsampled`."""
    factor = subsampling_factor(encoder)
    n = max_subsampled * factor
    if is_raw(encoder):
        return n
    while subsampled_length(n + 1, encoder._input_layer or "conv2d") <= max_subsampled:
        n += 1
    return n


def _export(module, args, path, input_names, output_names, axes=None):
    axes = axes or AXES
    dynamic_axes = {name: axes[name] for name in input_names + output_names if name in axes}
    # the legacy (TorchScript) exporter: it quantises more MatMuls than dynamo's graphs; its deprecation is noise here
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # transformers' attention branches on shapes in Python (a traced constant that holds for any
        # input with a mask); check_parity runs every graph on another length to catch a bad trace
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, args, str(tmp), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def example_batch(encoder, input_size, seed, lengths=(1.0, 0.8)):
    """A random padded batch of a length every front takes (1 s of samples for a raw-waveform model)."""
    torch.manual_seed(seed)
    n = 16000 if is_raw(encoder) else 200
    lens = torch.tensor([int(n * r) for r in lengths])
    return torch.randn(len(lengths), int(lens.max()), input_size), lens


def export_segments(model, input_size, out_dir):
    """Trace every exit segment to `out_dir/exit{L}.onnx`; return the manifest's segment list."""
    model = exportable_copy(model)
    enc = model.encoder
    feats, lens = example_batch(enc, input_size, 0)
    first = FirstSegment(model).eval()  # export restores the wrapper's mode on every submodule
    pos = has_pos_emb(model)
    first_out = FIRST_OUTPUTS if pos else [n for n in FIRST_OUTPUTS if n != "pos_emb"]
    next_in = NEXT_INPUTS if pos else [n for n in NEXT_INPUTS if n != "pos_emb"]
    segments = []
    with torch.no_grad():
        out = first(feats, lens)
    carry = out[1:]  # hidden, [pos_emb,] lengths
    for i, layer in enumerate(enc.exit_layers):
        path = Path(out_dir) / f"exit{layer}.onnx"
        logging.info("exporting the segment ending at exit %d to %s", layer, path)
        if i == 0:
            _export(first, (feats, lens), path, FIRST_INPUTS, first_out)
            inputs, outputs = FIRST_INPUTS, first_out
        else:
            seg = NextSegment(model, i).eval()
            _export(seg, tuple(carry), path, next_in, NEXT_OUTPUTS)
            with torch.no_grad():
                carry = (seg(*carry)[1],) + tuple(carry[1:])
            inputs, outputs = next_in, NEXT_OUTPUTS
        segments.append({"exit": layer, "fp32": path.name, "inputs": inputs, "outputs": outputs})
    return segments


def write_manifest(out_dir, model, config, segments, bpemodel, thresholds=None, max_frames=None, classifier=None,
                   calibration=None, decoders=None, rescoring=None):
    enc = model.encoder
    manifest = {
        "format_version": 1,
        # an aed_ee model exports its encoder and CTC heads, and its decoders for attention rescoring
        "model": f"{config['model']}/{config['encoder']}",
        "exit_layers": list(enc.exit_layers),
        "num_layers": enc.num_layers,
        "segments": segments,
        # per exit the decoder graph that scores CTC hypotheses (export/decoders.py); null: a CTC model
        "decoders": decoders,
        # the attention rescoring options the export was checked with: the runtime's defaults
        "rescoring": rescoring,
        # raw: the model reads the waveform, one "frame" per sample
        "features": "raw" if is_raw(enc) else "fbank",
        "frame_shift_ms": 1000 / SAMPLE_RATE if is_raw(enc) else 10,
        "subsampling_factor": subsampling_factor(enc),
        "min_frames": transcribe_min_frames(enc),
        "max_frames": int(max_frames or max_input_frames(enc)),
        "fbank": None if is_raw(enc) else make_fbank(config["input_size"]).opts.spec(),
        "vocab_size": config["vocab_size"],
        "blank_id": 0,
        "token_model": Path(bpemodel).name,
        "token_model_sha256": file_sha256(bpemodel),
        # null: no classifier was fitted before the export, so the runtime refuses `learned`
        "exit_classifier": classifier and Path(classifier).name,
        "exit_classifier_sha256": classifier and file_sha256(classifier),
        # null: no calibration.json (bin.calibrate_exits) before the export: no --max-wer-increase
        "calibration": calibration and Path(calibration).name,
        "calibration_sha256": calibration and file_sha256(calibration),
        "thresholds": {**DEFAULT_THRESHOLDS, "fixed": enc.exit_layers[-1], **(thresholds or {})},
        "opset": OPSET,
    }
    atomic_write_text(Path(out_dir) / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def copy_token_model(bpemodel, out_dir):
    if not Path(bpemodel).is_file():
        raise UserError(f"token model {bpemodel} does not exist (run stage 3)")
    with atomic_path(Path(out_dir) / Path(bpemodel).name) as tmp:
        shutil.copyfile(bpemodel, tmp)


def copy_calibration(exp_dir, out_dir):
    """Copy <exp_dir>/calibration.json into the export; its path, or None (a stale copy is removed)."""
    src, dst = Path(exp_dir) / CALIBRATION_FILE, Path(out_dir) / CALIBRATION_FILE
    if not src.is_file():
        dst.unlink(missing_ok=True)
        return None
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def copy_exit_classifier(exp_dir, model, out_dir):
    """Copy <exp_dir>/exit_classifier.json into the export (checked against the model's exits);
    return the copy's path, or None when the experiment has none (a stale copy is removed)."""
    src, dst = Path(exp_dir) / CLASSIFIER_FILE, Path(out_dir) / CLASSIFIER_FILE
    if not src.is_file():
        dst.unlink(missing_ok=True)
        logging.info("no %s: the export cannot run the learned policy", src)
        return None
    exits = ExitClassifier.load(src).exit_layers
    if exits != list(model.encoder.exit_layers):
        raise UserError(f"{src} was fitted for exits {exits}, the model has {list(model.encoder.exit_layers)}: "
                        "fit it again (python -m ee_asr.bin.fit_exit_classifier)")
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def quantize_int8(fp32_path, int8_path):
    """Dynamic int8 quantisation of the MatMul weights, one scale per output channel. The conv
    front stays float: quantised (ConvInteger) it ran 3-4x slower than in float on a CPU, and
    rewritten as strided slices + an int8 MatMul, 10% slower (paper shape, exit 2: 0.60x PyTorch
    against 0.54x with the float front)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a line per tensor, and advice
    try:
        with atomic_path(int8_path) as tmp:
            quantize_dynamic(str(fp32_path), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def check_parity(model, out_dir, segments, input_size, tolerance=1e-4):
    """Run PyTorch and ONNX Runtime on a random padded batch; fail if any exit differs by more
    than `tolerance` in log-probability. Returns the largest difference per exit."""
    from ee_asr.deploy.sessions import load_session, session_options

    # longer than the traced example, and padded: the time axis must really be dynamic
    feats, lens = example_batch(model.encoder, input_size, 1, (1.6, 1.4, 0.5))
    ref, olens = model.exit_log_probs(feats, lens)
    opts = session_options(1)
    carry, diffs = {"feats": feats.numpy(), "feats_lens": lens.numpy()}, {}
    for seg, (layer, logp) in zip(segments, ref):
        sess = load_session(Path(out_dir) / seg["fp32"], opts)
        out = dict(zip(seg["outputs"], sess.run(None, {n: carry[n] for n in seg["inputs"]})))
        carry.update(out, hidden=out["hidden_out"])
        worst = 0.0
        for b, n in enumerate(olens.tolist()):
            worst = max(worst, float(np.abs(out["log_probs"][b, :n] - logp[b, :n].numpy()).max()))
        diffs[layer] = worst
        if worst > tolerance:
            raise UserError(f"exported exit {layer} differs from PyTorch by {worst:.2e} in log-probability "
                            f"(tolerance {tolerance:g})")
    return diffs
