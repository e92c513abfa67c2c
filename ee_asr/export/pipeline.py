"""The whole export of an experiment: fp32 segments (and an AED's decoders, export/decoders.py), a
parity check against PyTorch (a random padded batch always; every utterance of --data-dir when
given), int8 graphs with their CER check (greedy CTC, and attention rescoring for an AED),
sherpa-onnx single-exit graphs, then the final manifest and a `.complete` marker."""

import logging
import os
from pathlib import Path

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.errors import UserError
from ee_asr.deploy.onnx_backend import OnnxBackend
from ee_asr.export import int8_check
from ee_asr.export.decoders import (
    DEFAULT_RESCORING,
    check_decoder_parity,
    compare_rescoring_int8,
    export_decoders,
    rescoring_parity_on_data,
)
from ee_asr.export.onnx_export import (
    check_parity,
    copy_calibration,
    copy_exit_classifier,
    copy_token_model,
    export_segments,
    quantize_int8,
    write_manifest,
)
from ee_asr.export.parity import parity_on_data
from ee_asr.export.sherpa import export_sherpa_exit
from ee_asr.models.load import load_trained


def export_experiment(exp_dir, output=None, model_file="model.pth", int8=False, data_dir=None, max_utts=None,
                      max_cer_increase=1.0, force=False, sherpa_exits=(), thresholds=None, max_frames=None,
                      sherpa_int16=False, rescoring=None):
    """`rescoring`: an AED's rescoring options ({nbest_size, ctc_weight, length_bonus}), recorded in
    the manifest and used by the checks. Return the manifest; UserError (nothing half-written) on a
    bad model, parity or int8 loss."""
    model, config = load_trained(exp_dir, model_file)
    out = make_output_dir(Path(output) if output else Path(exp_dir) / "onnx", probe=True)
    (out / "manifest.json").unlink(missing_ok=True)
    (out / ".complete").unlink(missing_ok=True)  # written last: a dir without it is an unfinished export
    # first: a classifier fitted for other exits fails the export before the graphs are traced
    manifest_args = (thresholds, max_frames, copy_exit_classifier(exp_dir, model, out), copy_calibration(exp_dir, out))
    segments = export_segments(model, config["input_size"], out)
    diffs = check_parity(model, out, segments, config["input_size"])
    logging.info("fp32 parity with PyTorch, max |log-prob difference| per exit: %s",
                 ", ".join(f"{k}: {v:.1e}" for k, v in diffs.items()))
    bpemodel = config["bpemodel"]
    copy_token_model(bpemodel, out)
    for seg in segments:
        seg["max_abs_diff_vs_torch"] = diffs[seg["exit"]]
    decoders = None
    if hasattr(model, "decoders"):
        decoders = export_decoders(model, out)
        for entry, (layer, diff) in zip(decoders, check_decoder_parity(model, out, decoders).items()):
            entry["max_abs_diff_vs_torch"] = diff
            logging.info("decoder of exit %d: fp32 parity with PyTorch %.1e nats", layer, diff)
    rescoring = ({**DEFAULT_RESCORING, **(rescoring or {})} if decoders else None)
    manifest_args += (decoders, rescoring)
    refusal, parity, report, refused = None, None, None, False
    write_manifest(out, model, config, segments, bpemodel, *manifest_args)  # the runtime reads it
    utts = int8_check.read_dump(data_dir, max_utts) if data_dir else None
    if utts:
        parity = parity_on_data(model, OnnxBackend(out), utts)
        if decoders:
            rescoring_parity = rescoring_parity_on_data(model, out, utts, **rescoring)
            for row, r in zip(parity, rescoring_parity):
                row["rescoring_max_abs_att_diff"] = r["max_abs_att_diff"]
                row["rescoring_same_output_share"] = r["same_output_share"]
    if int8:
        for seg in segments + (decoders or []):
            seg["int8"] = seg["fp32"].replace(".onnx", ".int8.onnx")
            quantize_int8(out / seg["fp32"], out / seg["int8"])
        write_manifest(out, model, config, segments, bpemodel, *manifest_args)
        if utts is None:
            logging.warning("int8 graphs written without a CER check: give --data-dir to measure them")
        else:
            report = int8_check.compare_int8(out, utts, data_dir, bpemodel)
            if decoders:
                report["rescoring_exits"] = compare_rescoring_int8(out, utts, bpemodel, **rescoring)
                report["rescoring"] = rescoring
            worst = int8_check.worst_exit(report, max_cer_increase)
            refused = worst is not None and not force
            if worst is not None:
                msg = (f"int8 raises CER at exit {worst['exit']} by {worst['cer_change']:.2f} points "
                       f"({worst['cer_fp32']:.2f} -> {worst['cer_int8']:.2f}), more than --max-cer-increase "
                       f"{max_cer_increase:g}; see {out / 'RESULTS.md'}")
                if refused:
                    for seg in segments + (decoders or []):
                        os.unlink(out / seg.pop("int8"))
                    refusal = msg + " (int8 graphs removed; --force keeps them)"
                else:
                    logging.warning("%s (kept: --force)", msg)
    if utts:
        int8_check.write_report(out, data_dir, parity, report, max_cer_increase, refused)
    for layer in sherpa_exits:
        if layer not in model.encoder.exit_layers:
            raise UserError(f"--sherpa-exit {layer} is not an exit (exits: {model.encoder.exit_layers})")
        d = export_sherpa_exit(model, config, layer, out / f"sherpa_exit{layer}", int8=int8 and refusal is None,
                               int16_samples=sherpa_int16)
        logging.info("sherpa-onnx graph of exit %d in %s", layer, d)
    manifest = write_manifest(out, model, config, segments, bpemodel, *manifest_args)
    (out / ".complete").write_text("")
    if refusal:
        raise UserError(refusal)
    return manifest
