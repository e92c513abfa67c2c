"""One exit as a single CTC graph for sherpa-onnx's offline recogniser (its `zipformer_ctc` model
kind, which sherpa-onnx 2.0.1 runs on whatever graph has that interface):
- inputs x (N, T, 80) float32 fbank, x_lens (N,) int64; outputs log_probs (N, T', V) with V
  fixed in the graph (sherpa reads the vocabulary size from that axis), log_probs_len (N,) int64;
- tokens.txt, one "symbol id" per line, blank as <blank> (sherpa finds the blank id by name);
- sherpa computes fbank with kaldi-native-fbank from samples in [-1, 1] where ee-asr scales them
  to 16-bit values first: every log-mel bin is 2 ln 32768 lower, which the graph adds back;
  sherpa's default mel range ends 400 Hz below Nyquist (high_freq=-400), ee-asr's at Nyquist
  (high_freq=0): set FeatureExtractorConfig(high_freq=0). Bins under Kaldi's energy floor at the
  [-1, 1] scale (near-silence) still differ; for identical features export with int16_samples
  and set normalize_samples=False as well.
The metadata is informative (sherpa-onnx reads none of it for this model kind)."""

import math
import warnings
from pathlib import Path

import onnx
import torch

from ee_asr.common.atomic import atomic_path, atomic_write_text
from ee_asr.common.errors import UserError
from ee_asr.export.onnx_export import OPSET, is_raw, quantize_int8, subsampling_factor
from ee_asr.export.segments import SingleExitGraph, exportable_copy

FEATURE_OFFSET = 2 * math.log(32768.0)


def write_tokens(token_list, path):
    atomic_write_text(path, "".join(f"{tok} {i}\n" for i, tok in enumerate(token_list)))


def export_sherpa_exit(model, config, layer, out_dir, int8=False, int16_samples=False):
    """Write out_dir/model.onnx (and model.int8.onnx), tokens.txt; return the dir. int16_samples:
    for a sherpa-onnx configured with normalize_samples=False (features then identical to ee-asr's)."""
    out_dir = Path(out_dir)
    if is_raw(model.encoder):
        raise UserError("sherpa-onnx's CTC recognisers compute fbank features: a raw-waveform (wav2vec2) model "
                        "cannot be exported for them")
    exported = exportable_copy(model)
    index = exported.encoder.exit_layers.index(layer)
    graph = SingleExitGraph(exported, index, 0.0 if int16_samples else FEATURE_OFFSET).eval()
    torch.manual_seed(0)
    x, x_lens = torch.randn(2, 200, config["input_size"]), torch.tensor([200, 150])
    path = out_dir / "model.onnx"
    # the legacy (TorchScript) exporter: it quantises more MatMuls than dynamo's graphs; its deprecation is noise here
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, (x, x_lens), str(tmp), input_names=["x", "x_lens"],
                          output_names=["log_probs", "log_probs_len"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T'"},
                                        "log_probs_len": {0: "N"}})
        proto = onnx.load(str(tmp))
        meta = {"model_type": "ee_asr_conformer_ctc", "model_author": "ee-asr", "exit_layer": layer,
                "num_layers": exported.encoder.num_layers, "vocab_size": config["vocab_size"],
                "subsampling_factor": subsampling_factor(exported.encoder), "normalize_type": "",
                "feature_dim": config["input_size"], "normalize_samples": int(not int16_samples),
                "comment": "ee-asr early-exit Conformer-CTC, one exit; CMVN inside the graph"}
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, str(v)
        onnx.save(proto, str(tmp))
    if int8:
        quantize_int8(path, out_dir / "model.int8.onnx")
    write_tokens(config["token_list"], out_dir / "tokens.txt")
    return out_dir


def sherpa_decode(model_dir, waves, high_freq=0.0, int8=False, num_threads=1, normalize_samples=True):
    """Texts sherpa-onnx's own offline recogniser gives for `waves` (float samples at 16 kHz) with
    an exported exit; high_freq=-400 is sherpa's default feature setting, 0 ee-asr's."""
    import sherpa_onnx
    from sherpa_onnx.lib._sherpa_onnx import OfflineRecognizer

    model_dir = Path(model_dir)
    feat = sherpa_onnx.FeatureExtractorConfig(sampling_rate=16000, feature_dim=80, high_freq=high_freq,
                                              normalize_samples=normalize_samples)
    graph = model_dir / ("model.int8.onnx" if int8 else "model.onnx")
    model = sherpa_onnx.OfflineModelConfig(
        zipformer_ctc=sherpa_onnx.OfflineZipformerCtcModelConfig(model=str(graph)),
        tokens=str(model_dir / "tokens.txt"), num_threads=num_threads)
    recognizer = OfflineRecognizer(sherpa_onnx.OfflineRecognizerConfig(feat_config=feat, model_config=model))
    streams = []
    for wave in waves:
        s = recognizer.create_stream()
        s.accept_waveform(16000, wave)
        streams.append(s)
    recognizer.decode_streams(streams)
    return [" ".join(s.result.text.replace("\u2581", " ").split()) for s in streams]
