"""The per-utterance result files of the paper authors' wav2vec2-ee repository, read as exit records.

Their `wer_results/<run>/epoch_<n>/` directory holds, per exit L in 2, 4, ..., 12:
- `entropy_wer_entropy_L.txt`: "<score> <wer>" per utterance, score = sum_t sum_v p log p / (T V),
  i.e. minus the mean frame entropy divided by the vocabulary size V;
- `entropy_wer_wer_L.txt`: greedy decoding, "expect_len: 8 pred_len: 9 hit: 2 sub: 6 ins: 1 del: 0 wer: 0.875";
- `posterior_wer_posterior_L.txt`: the N-best posterior (top share) of their lexicon + 4-gram LM beam;
- `posterior_wer_wer_L.txt`: that beam's "expect_len: 8 pred_len: 9 hits: 3 errors: 6 wer: 0.75".
All files have one line per utterance in the same order; which lines form which test set is not
in the files, so the caller names the line ranges.

As records (score/sweep.py), greedy ones carry `entropy` on this project's scale (mean frame
entropy / log V, exits/scores.py), so thresholds read like ours; the beam's carry `entropy`
too, and `nbest_posterior`, so that both selectors choose exits for the same decoder's output, as
an equal-compute comparison of selectors needs. Each line's own `wer` is checked against its
counts, which catches a misread or misaligned file.
"""

import math
import re
from pathlib import Path

from ee_asr.common.errors import DataError, UserError

DECODERS = ("greedy", "lm_beam")
FIELD = re.compile(r"(\w+): *(\S+)")
COUNTS = {"greedy": ("expect_len", "sub", "del", "ins", "wer"), "lm_beam": ("expect_len", "errors", "wer")}


def parse_sets(specs):
    """["test_clean=1-2620", ...] -> [(name, first line, last line)], 1-based and inclusive."""
    sets = []
    for spec in specs:
        m = re.fullmatch(r"([\w.-]+)=(\d+)-(\d+)", spec)
        if not m or int(m.group(2)) < 1 or int(m.group(3)) < int(m.group(2)):
            raise UserError(f"--sets: '{spec}' is not NAME=FIRST-LAST (1-based lines, FIRST <= LAST)")
        sets.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return sets


def _lines(path):
    if not path.is_file():
        raise DataError(path, "missing: a wav2vec2-ee results dir has entropy_wer_*_L.txt and "
                              "posterior_wer_*_L.txt for every exit L")
    return path.read_text(encoding="utf-8").splitlines()


def _counts(text, path, line, decoder):
    fields = dict(FIELD.findall(text))
    try:
        values = {k: float(fields[k]) for k in COUNTS[decoder]}
    except KeyError as e:
        raise DataError(path, f"no '{e.args[0]}' field in {text!r}", line) from None
    except ValueError:
        raise DataError(path, f"a field is not a number in {text!r}", line) from None
    errors = values["errors"] if decoder == "lm_beam" else values["sub"] + values["del"] + values["ins"]
    words = values["expect_len"]
    if words != int(words) or errors != int(errors) or words < 0 or errors < 0:
        raise DataError(path, f"counts must be non-negative integers in {text!r}", line)
    if words > 0 and abs(errors / words - values["wer"]) > 1e-6:
        raise DataError(path, f"wer {values['wer']} is not errors / expect_len = {errors / words:.6f}", line)
    return int(words), int(errors), {k: int(values[k]) for k in ("sub", "del", "ins") if k in values}


def _score(text, path, line):
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        raise DataError(path, f"no score at the start of {text!r}", line) from None
    if not math.isfinite(value):
        raise DataError(path, f"score {value} is not finite", line)
    return value


def exit_layers(directory):
    layers = sorted(int(m.group(1)) for p in Path(directory).glob("entropy_wer_entropy_*.txt")
                    if (m := re.fullmatch(r"entropy_wer_entropy_(\d+)\.txt", p.name)))
    if not layers:
        raise DataError(directory, "no entropy_wer_entropy_<L>.txt: not a wav2vec2-ee results dir")
    return layers


def read_records(directory, decoder, sets, vocab_size):
    """{set name: exit records} of one decoder ('greedy' or 'lm_beam') from a results dir."""
    directory = Path(directory)
    to_our_entropy = vocab_size / math.log(vocab_size)  # their -H/V -> our H/log V
    out = {name: [] for name, _, _ in sets}
    n_lines = None
    for layer in exit_layers(directory):
        kind = "entropy" if decoder == "greedy" else "posterior"
        paths = {"wer": directory / f"{kind}_wer_wer_{layer}.txt",
                 "entropy": directory / f"entropy_wer_entropy_{layer}.txt"}
        if decoder == "lm_beam":
            paths["posterior"] = directory / f"posterior_wer_posterior_{layer}.txt"
        lines = {k: _lines(p) for k, p in paths.items()}
        for k, ls in lines.items():
            if n_lines is None:
                n_lines = (len(ls), paths[k])
            elif len(ls) != n_lines[0]:
                raise DataError(paths[k], f"{len(ls)} lines, but {n_lines[1]} has {n_lines[0]}: "
                                          "every file needs one line per utterance, in the same order")
        for name, first, last in sets:
            if last > n_lines[0]:
                raise UserError(f"--sets: {name} ends at line {last}, but the files have {n_lines[0]} lines")
            for n in range(first, last + 1):
                words, errors, ops = _counts(lines["wer"][n - 1], paths["wer"], n, decoder)
                record = {"utt": f"{name}-{n:05d}", "exit": layer, "ref_words": words, "errors": errors, **ops,
                          "entropy": -_score(lines["entropy"][n - 1], paths["entropy"], n) * to_our_entropy}
                if decoder == "lm_beam":
                    record["nbest_posterior"] = _score(lines["posterior"][n - 1], paths["posterior"], n)
                out[name].append(record)
    return out
