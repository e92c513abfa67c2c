"""What int8 costs in accuracy: CER at every exit of the int8 graphs against the fp32 ones (and
the reference text) on a dump dir (feats.scp + text, the features the model was trained on),
written into the export dir's RESULTS.md and results.json (with the fp32 parity, export/parity.py)."""

import json
import logging
import time
from pathlib import Path

import kaldiio

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.edit_ops import char_counts, error_rate, errors_of
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_table
from ee_asr.data.online_features import OnlineFeatures, is_online_dump
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.deploy.onnx_backend import onnx_engine


def read_dump(data_dir, max_utts=None):
    """[(utt, feats, text)] of a dump dir, sorted by length (batches pad less)."""
    data_dir = Path(data_dir)
    online = is_online_dump(data_dir)
    for name in ("wav.scp" if online else "feats.scp", "text"):
        if not (data_dir / name).is_file():
            raise UserError(f"{data_dir / name} does not exist: --data-dir must be a dump dir (feats.scp and text)")
    text = {k: v for k, v, _ in read_table(data_dir / "text")}
    utts = []
    if online:  # features computed from the audio (data/online_features.py)
        features = OnlineFeatures(data_dir)
        pairs = ((key, features[key]) for key in features.specs)
    else:
        pairs = kaldiio.load_scp_sequential(str(data_dir / "feats.scp"))
    for key, feats in pairs:
        if key not in text:
            raise UserError(f"{data_dir / 'text'}: no transcript for utterance '{key}'")
        utts.append((key, feats, text[key]))
        if max_utts and len(utts) >= max_utts:
            break
    return sorted(utts, key=lambda u: len(u[1]))


def greedy_at_every_exit(model, utts, batch_size=16):
    """{utt: {layer: ids}} decoding every utterance through every loaded exit."""
    out, start = {}, time.time()
    for b in range(0, len(utts), batch_size):
        batch = utts[b:b + batch_size]
        res = model.decode_every_exit([f for _, f, _ in batch], fields=())
        for (key, _, _), exits in zip(batch, res):
            out[key] = {layer: e["ids"] for layer, e in exits.items()}
        done = b + len(batch)
        if done % (batch_size * 10) == 0 or done == len(utts):
            logging.info("%d/%d utterances, %.1f utt/s", done, len(utts), done / (time.time() - start))
    return out


def cer_table(utts, hyps, tokenizer, exits):
    rows = {}
    for layer in exits:
        errors = total = 0
        for key, _, ref in utts:
            counts = char_counts(ref, tokenizer.decode(hyps[key][layer]))
            errors += errors_of(counts)
            total += counts["hits"] + counts["sub"] + counts["del"]
        rows[layer] = error_rate(errors, total)
    return rows


def compare_int8(onnx_dir, utts, data_dir, bpemodel):
    tokenizer = Tokenizer(bpemodel)
    fp32, int8 = onnx_engine(onnx_dir), onnx_engine(onnx_dir, int8=True)
    exits = fp32.exit_layers
    logging.info("int8 check: decoding %d utterances of %s at every exit, fp32 then int8", len(utts), data_dir)
    h32, h8 = greedy_at_every_exit(fp32, utts), greedy_at_every_exit(int8, utts)
    c32, c8 = cer_table(utts, h32, tokenizer, exits), cer_table(utts, h8, tokenizer, exits)
    return {"data_dir": str(data_dir), "utterances": len(utts), "exits": [
        {"exit": e, "cer_fp32": round(c32[e], 2), "cer_int8": round(c8[e], 2), "cer_change": round(c8[e] - c32[e], 2),
         "same_output_share": round(sum(h32[k][e] == h8[k][e] for k, _, _ in utts) / max(len(utts), 1), 4)}
        for e in exits]}


def write_report(onnx_dir, data_dir, parity=None, report=None, max_increase=None, refused=False):
    """RESULTS.md and results.json of the export dir: fp32 parity and/or the int8 check."""
    onnx_dir = Path(onnx_dir)
    atomic_write_text(onnx_dir / "results.json", json.dumps(
        {"data_dir": str(data_dir), "fp32_parity": parity, "int8": report and {
            **report, "max_cer_increase": max_increase, "refused": refused}}, indent=1) + "\n")
    lines = ["# ONNX export", ""]
    if parity:
        lines += ["## fp32 against PyTorch", "", f"{parity[0]['utterances']} utterances of `{data_dir}` in padded "
                  "batches of 16; largest |log-prob difference| over valid frames.", "",
                  "| exit | max abs diff | same greedy ids |", "|---|---|---|"]
        lines += [f"| {r['exit']} | {r['max_abs_diff']:.1e} | {100 * r['same_greedy_share']:.1f}% |" for r in parity]
        if "rescoring_same_output_share" in parity[0]:
            lines += ["", "Attention rescoring (fp32 segments and decoders against PyTorch's): largest |attention "
                      "score difference| over shared hypotheses, same rescored output.", "",
                      "| exit | max abs diff | same output |", "|---|---|---|"]
            lines += [f"| {r['exit']} | {r['rescoring_max_abs_att_diff']:.1e} | "
                      f"{100 * r['rescoring_same_output_share']:.1f}% |" for r in parity]
        lines.append("")
    if report:
        lines += ["## int8 against fp32", "",
                  f"Greedy CTC at every exit on {report['utterances']} utterances; int8 = MatMul weights quantised "
                  "per output channel (dynamic), conv front in float.", "",
                  "| exit | CER fp32 | CER int8 | change | same output |", "|---|---|---|---|---|"]
        for r in report["exits"]:
            lines.append(f"| {r['exit']} | {r['cer_fp32']:.2f} | {r['cer_int8']:.2f} | {r['cer_change']:+.2f} | "
                         f"{100 * r['same_output_share']:.1f}% |")
        if report.get("rescoring_exits"):
            o = report["rescoring"]
            lines += ["", f"Attention rescoring at every exit (CTC {o['nbest_size']}-best, CTC weight "
                      f"{o['ctc_weight']:g}, length bonus {o['length_bonus']:g}), segments and decoders int8:", "",
                      "| exit | CER fp32 | CER int8 | change | same output |", "|---|---|---|---|---|"]
            for r in report["rescoring_exits"]:
                lines.append(f"| {r['exit']} | {r['cer_fp32']:.2f} | {r['cer_int8']:.2f} | {r['cer_change']:+.2f} | "
                             f"{100 * r['same_output_share']:.1f}% |")
        verdict = "REFUSED: the int8 graphs were removed" if refused else "accepted"
        lines += ["", f"Largest allowed CER increase {max_increase:.2f} points: {verdict}.", ""]
    atomic_write_text(onnx_dir / "RESULTS.md", "\n".join(lines))


def worst_exit(report, max_increase):
    """The exit whose CER int8 raised most beyond `max_increase` (greedy CTC or attention rescoring), or None."""
    bad = [r for r in report["exits"] + report.get("rescoring_exits", []) if r["cer_change"] > max_increase]
    return max(bad, key=lambda r: r["cer_change"]) if bad else None
