"""Per-exit WER/CER tables in ESPnet's RESULTS.md format, from decoders' exits.jsonl files."""

import json
from pathlib import Path

from ee_asr.common.edit_ops import error_rate
from ee_asr.common.errors import DataError
from ee_asr.common.skipped import SKIPPED_FILE, read_skipped

HEADER = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|\n|---|---|---|---|---|---|---|---|---|\n"


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(path, f"not valid JSON: {e.msg}", n) from None
    return rows


KEYS = {"word": ("ref_words", "sub", "del", "ins"), "char": ("ref_chars", "char_sub", "char_del", "char_ins")}


def table_row(name, records, unit):
    """One ESPnet row over records at a single exit; unit is 'word' or 'char'. Word records that
    carry only their error total (results imported from elsewhere) leave Corr/Sub/Del/Ins blank."""
    ref_key, *err_keys = KEYS[unit]
    ref = sum(r[ref_key] for r in records)
    if unit == "word" and not all(k in r for r in records for k in err_keys):
        errors, s_err = sum(r["errors"] for r in records), sum(1 for r in records if r["errors"])
        rates = f"{error_rate(errors, ref):.1f}|{error_rate(s_err, len(records)):.1f}"
        return f"|{name}|{len(records)}|{ref}|-|-|-|-|{rates}|\n"
    sub, dele, ins = (sum(r[k] for r in records) for k in err_keys)
    s_err = sum(1 for r in records if any(r[k] for k in err_keys))
    cells = [ref - sub - dele, sub, dele, ins, sub + dele + ins]
    pct = "|".join(f"{error_rate(v, ref):.1f}" for v in cells)
    return f"|{name}|{len(records)}|{ref}|{pct}|{error_rate(s_err, len(records)):.1f}|\n"


def wer(records):
    return error_rate(sum(r["errors"] for r in records), sum(r["ref_words"] for r in records))


def exit_tables(decode_dirs):
    """Markdown WER and CER tables with one row per decode dir and exit."""
    wer_rows, cer_rows, summary = [], [], {}
    for d in decode_dirs:
        records = read_jsonl(Path(d) / "exits.jsonl")
        for layer in sorted({r["exit"] for r in records}):
            at = [r for r in records if r["exit"] == layer]
            name = f"{Path(d).name}/exit{layer}"
            wer_rows.append(table_row(name, at, "word"))
            if all(k in r for r in at for k in KEYS["char"]):  # imported results may have no CER
                cer_rows.append(table_row(name, at, "char"))
            summary[f"{Path(d).name}/wer_exit{layer}"] = round(wer(at), 2)
    text = "### WER\n\n" + HEADER + "".join(wer_rows)
    if cer_rows:
        text += "\n### CER\n\n" + HEADER + "".join(cer_rows)
    return text + skipped_lines(decode_dirs), summary


def skipped_lines(decode_dirs, shown=20):
    """Per decode dir, the utterances decoding skipped (too short, unreadable): they are in no table
    row, so a reader must see that the rows cover fewer utterances than the test set."""
    lines = []
    for d in decode_dirs:
        ids = read_skipped(Path(d) / SKIPPED_FILE)
        if ids:
            more = f" ... ({len(ids) - shown} more, see {Path(d) / SKIPPED_FILE})" if len(ids) > shown else ""
            lines.append(f"- {Path(d).name}: {len(ids)} utterances skipped: {' '.join(ids[:shown])}{more}\n")
    return "\n" + "".join(lines) if lines else ""
