"""ONNX export, the torch-free runtime, int8 and sherpa-onnx, on a tiny random-weight experiment
(a Conformer-CTC with 2 exits, global CMVN and a sentencepiece model trained on a few sentences)."""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, decode_online, onnx_decode, random_experiment, tiny_dump, write_wav
from ee_asr.bin.export_onnx import main as export_main
from ee_asr.bin.transcribe import main as transcribe_main
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.audio import read_audio
from ee_asr.data.cmvn import compute_global_stats, write_stats
from ee_asr.data.fbank import make_fbank
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.exits.exit_classifier import FEATURE_SCORES, FEATURES, ExitClassifier, load_for_experiment
from ee_asr.exits.policies import RULES
from ee_asr.models.load import load_trained
from ee_asr.models.registry import build_model

SENTENCES = ["hello world", "good morning", "early exit", "speech recognition", "a small model", "on the device",
             "one two three", "exit early when sure"]
ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 4, "exit_layers": [2, 4],
           "cnn_module_kernel": 7, "dropout_rate": 0.0, "input_layer": "conv2d8", "subsampling_channels": 8}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{exp, onnx, data, wavs}: an experiment with random weights, exported with int8 and a sherpa exit."""
    root = tmp_path_factory.mktemp("onnx")
    data, wavs, tok = tiny_dump(root, SENTENCES, 0.5)
    write_stats(compute_global_stats(data / "feats.scp"), root / "cmvn.npz")
    config = {"encoder": "conformer_ee", "encoder_conf": ENCODER, "model": "ctc_ee", "model_conf": {},
              "normalize": "global_mvn", "normalize_conf": {"stats_file": str(root / "cmvn.npz")},
              "input_size": 80, "vocab_size": tok.vocab_size, "bpemodel": str(root / "bpe.model"),
              "token_list": tok.token_list}
    exp = random_experiment(root / "exp", config, ctc_scale=20.0)
    export_main(["--exp-dir", str(exp), "--int8", "--data-dir", str(data), "--force", "--sherpa-exit", "2"])
    return {"exp": exp, "onnx": exp / "onnx", "data": data, "wavs": wavs, "root": root}


@pytest.fixture(scope="module")
def tiny3(tiny):
    """{exp, onnx}: the tiny model with three exits (2, 3, 4) and one shared head, so that adjacent
    exits partly agree, with an exit classifier; exported fp32 (which copies the classifier)."""
    config = yaml.safe_load((tiny["exp"] / "config.yaml").read_text())
    config.update(encoder_conf={**ENCODER, "exit_layers": [2, 3, 4]}, model_conf={"shared_head": True})
    exp = tiny["root"] / "exp3"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(1)
    model = build_model(config)
    with torch.no_grad():  # sharp posteriors, and a blank prior that makes some hypotheses short or empty
        model.ctc_heads[0].ctc_lo.weight.mul_(20.0)
        model.ctc_heads[0].ctc_lo.bias[0] += 25.0
    torch.save(model.state_dict(), exp / "model.pth")
    # weights of every feature, so that each score the runtime computes moves p_as_good
    weights = np.random.default_rng(0).normal(0.0, 0.5, len(FEATURES) + 1)
    clf = ExitClassifier(weights, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), [2, 3, 4])
    (exp / "exit_classifier.json").write_text(clf.to_json())
    export_main(["--exp-dir", str(exp)])
    return {"exp": exp, "onnx": exp / "onnx"}


def torch_feats(wavs):
    fbank = make_fbank()
    return [fbank(read_audio(str(w))) for _, w, _ in wavs]


def test_export_writes_manifest_segments_and_token_model(tiny):
    m = json.loads((tiny["onnx"] / "manifest.json").read_text())
    assert m["exit_layers"] == [2, 4] and m["subsampling_factor"] == 8
    assert [s["fp32"] for s in m["segments"]] == ["exit2.onnx", "exit4.onnx"]
    assert all((tiny["onnx"] / s["int8"]).is_file() for s in m["segments"])
    assert (tiny["onnx"] / m["token_model"]).is_file() and len(m["token_model_sha256"]) == 64
    assert m["min_frames"] >= 16 and m["max_frames"] >= 4999 * 8
    # no positional table constant: the first segment is about as big as its weights
    model, _ = load_trained(tiny["exp"])
    above = ("encoder.encoders.2", "encoder.encoders.3", "encoder.exit_norms.1", "ctc_heads.1")
    first_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(above))
    assert os.path.getsize(tiny["onnx"] / "exit2.onnx") < 4 * first_params + 200_000
    results = json.loads((tiny["onnx"] / "results.json").read_text())
    assert [r["exit"] for r in results["int8"]["exits"]] == [2, 4]
    assert "| 2 |" in (tiny["onnx"] / "RESULTS.md").read_text()
    # fp32 parity on every utterance of the data dir, written by the export
    assert all(r["max_abs_diff"] <= 1e-4 and r["same_greedy_share"] == 1.0 and r["utterances"] == len(SENTENCES)
               for r in results["fp32_parity"])
    assert (tiny["onnx"] / ".complete").is_file()


def test_fp32_parity_on_a_padded_batch(tiny):
    from ee_asr.deploy.onnx_backend import OnnxBackend, pad

    model, _ = load_trained(tiny["exp"])
    feats = torch_feats(tiny["wavs"])
    batch = pad(feats)
    ref, olens = model.exit_log_probs(torch.from_numpy(batch["feats"]), torch.from_numpy(batch["feats_lens"]))
    rt = OnnxBackend(tiny["onnx"])
    carry = batch
    for i, (layer, logp) in enumerate(ref):
        carry = rt.advance(carry, i)
        out = carry["log_probs"]
        assert carry["lengths"].tolist() == olens.tolist()
        for b, n in enumerate(olens.tolist()):
            assert np.abs(out[b, :n] - logp[b, :n].numpy()).max() <= 1e-4
            assert (out[b, :n].argmax(-1) == logp[b, :n].numpy().argmax(-1)).all()


@pytest.mark.parametrize("policy", ["fixed", "entropy", "maxprob", "nbest"])
def test_each_policy_batched_equals_one_by_one_and_matches_pytorch(tiny, policy):
    from ee_asr.deploy.onnx_backend import onnx_engine, pad

    feats = torch_feats(tiny["wavs"])
    score = {"entropy": "entropy", "maxprob": "maxprob", "nbest": "nbest_posterior"}.get(policy)
    if score:  # a threshold between utterances' first-exit scores: some exit at 2, the others at 4
        first = sorted(r[2]["scores"][score] for r in onnx_engine(tiny["onnx"]).decode_every_exit(feats))
        threshold = (first[3] + first[4]) / 2
    else:
        threshold = 2
    together = onnx_decode(tiny["onnx"], feats, policy, threshold)
    if policy != "fixed":
        assert {r["exit"] for r in together} == {2, 4}
    for f, r in zip(feats, together):
        alone = onnx_decode(tiny["onnx"], [f], policy, threshold)[0]
        assert alone["exit"] == r["exit"] and alone["ids"] == r["ids"]
    model, _ = load_trained(tiny["exp"])
    b = pad(feats)
    ref = decode_online(model, torch.from_numpy(b["feats"]), torch.from_numpy(b["feats_lens"]), policy, threshold)
    assert [(r["exit"], r["ids"]) for r in ref] == [(r["exit"], r["ids"]) for r in together]


def test_budget_and_loading_only_the_first_segments(tiny):
    from ee_asr.deploy.onnx_backend import OnnxBackend

    feats = torch_feats(tiny["wavs"])[:3]
    small = OnnxBackend(tiny["onnx"], max_layers=3)
    assert small.exit_layers == [2] and len(small.sessions) == 1
    capped = onnx_decode(tiny["onnx"], feats, "entropy", 0.0, max_layers=2)  # never sure enough, but capped at 2
    assert [r["exit"] for r in capped] == [2, 2, 2]
    assert [r["ids"] for r in capped] == [r["ids"] for r in onnx_decode(tiny["onnx"], feats, "entropy", 0.0,
                                                                         loaded_up_to=3)]
    with pytest.raises(UserError, match="not an exit layer"):
        onnx_decode(tiny["onnx"], feats, "entropy", 0.1, max_layers=1)
    with pytest.raises(UserError, match="below the first exit"):
        OnnxBackend(tiny["onnx"], max_layers=1)


def test_runtime_never_imports_torch(tiny, tiny3):
    code = f"""
import sys
from ee_asr import Recognizer
r = Recognizer.from_onnx({str(tiny['onnx'])!r}, "nbest", 0.5).transcribe({str(tiny['wavs'][3][1])!r})
assert isinstance(r.text, str) and r.exit in (2, 4)
for policy in ("seqpost", "agree", "learned"):  # thresholds that pass every exit: all their scores
    rec = Recognizer.from_onnx({str(tiny3['onnx'])!r}, policy, -1.0 if policy == "agree" else 2.0)
    assert rec.transcribe({str(tiny['wavs'][3][1])!r}).exit == 4
assert "torch" not in sys.modules, "torch was imported"
# 16 kHz audio needs no resampling: scipy (27 MB, 130 ms to import) stays out of the runtime
assert not [m for m in sys.modules if m.startswith("scipy")], "scipy was imported"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def run_cli(main, argv, capsys):
    """Run a bin tool in this process (no second start-up of torch): (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        run_main(main, argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_transcribe_backends_agree_and_fail_alike_on_bad_audio(tiny, tmp_path, capsys):
    good = [str(w) for _, w, _ in tiny["wavs"][:3]]
    short, empty, broken = tmp_path / "short.wav", tmp_path / "empty.wav", tmp_path / "broken.wav"
    write_wav(short, 0.05)
    write_wav(empty, 0.0)
    broken.write_bytes(b"not audio at all")
    specs = good + [str(short), str(empty), str(broken), str(tmp_path / "missing.wav")]
    args = ["--exp-dir", str(tiny["exp"]), "--policy", "fixed", "--threshold", "4"]
    out = {b: run_cli(transcribe_main, args + ["--backend", b] + specs, capsys) for b in ("torch", "onnx")}
    assert out["torch"][0] == out["onnx"][0] == 1
    def strip(s):
        return [line.rsplit("\t", 1)[0] for line in s.splitlines()]  # drop the time column
    assert strip(out["torch"][1]) == strip(out["onnx"][1]) and len(strip(out["onnx"][1])) == 3
    assert out["torch"][2].splitlines() == out["onnx"][2].splitlines()
    assert len(out["onnx"][2].splitlines()) == 4 and "too short" in out["onnx"][2]


def test_long_input_decodes_and_too_long_is_refused(tiny, tmp_path):
    from ee_asr.deploy.onnx_backend import onnx_engine
    from ee_asr.exits.policies import Policy

    long = tmp_path / "long.wav"
    write_wav(long, 25.0, seed=3)
    feats = torch_feats([(None, long, None)])
    engine = onnx_engine(tiny["onnx"])
    model, _ = load_trained(tiny["exp"])
    ref = decode_online(model, torch.from_numpy(feats[0])[None], torch.tensor([len(feats[0])]), "fixed", 4)
    assert engine.decode(feats, Policy("fixed", 4))[0]["ids"] == ref[0]["ids"]
    engine.backend.max_frames = len(feats[0]) - 1
    with pytest.raises(UserError, match="too long"):
        engine.decode(feats, Policy("fixed", 4))


def test_int8_refusal_exits_2_and_removes_int8_graphs(tiny, tmp_path, capsys):
    out = tmp_path / "strict"
    code, _, err = run_cli(export_main, ["--exp-dir", str(tiny["exp"]), "--int8", "--data-dir", str(tiny["data"]),
                                         "--output", str(out), "--max-cer-increase", "-1000"], capsys)
    assert code == 2 and err.splitlines()[-1].startswith("ERROR: int8 raises CER") and "--max-cer-increase" in err
    report = json.loads((out / "results.json").read_text())["int8"]
    assert report["refused"] and [r["exit"] for r in report["exits"]] == [2, 4]
    assert not list(out.glob("*.int8.onnx"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert all("int8" not in s for s in manifest["segments"])
    assert all(r["same_greedy_share"] == 1.0 for r in json.loads((out / "results.json").read_text())["fp32_parity"])


def test_a_truncated_or_garbled_segment_is_named(tiny, tmp_path):
    from ee_asr.deploy.onnx_backend import OnnxBackend

    onnx = tmp_path / "onnx"
    shutil.copytree(tiny["onnx"], onnx)
    seg = onnx / json.loads((onnx / "manifest.json").read_text())["segments"][1]["fp32"]
    (onnx / "bad").mkdir()
    (onnx / "bad" / "manifest.json").write_text('{"format_version": 1,')
    with pytest.raises(UserError, match="manifest.json: not valid JSON"):
        OnnxBackend(onnx / "bad")
    for damage in (seg.read_bytes()[: seg.stat().st_size // 2], b"not a graph"):
        seg.write_bytes(damage)
        with pytest.raises(UserError, match=rf"ONNX graph {re.escape(str(seg))} cannot be loaded \(.+\)"):
            OnnxBackend(onnx)
    assert OnnxBackend(onnx, max_layers=2).exit_layers == [2]  # a segment above the cap is never opened


def test_export_into_an_unwritable_directory_is_named_before_any_work(tiny, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_cli(export_main, ["--exp-dir", str(tiny["exp"]), "--output", str(blocker / "onnx")], capsys)
    assert code == 2 and err.splitlines()[-1] == f"ERROR: cannot write to directory {blocker / 'onnx'}: Not a directory"
    # read-only: root ignores permission bits, so the filesystem's refusal is simulated where it comes
    read_only, mkstemp = tmp_path / "read_only", tempfile.mkstemp

    def refuse(*args, dir=None, **kw):
        if dir is not None and str(dir).startswith(str(read_only)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return mkstemp(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code, _, err = run_cli(export_main, ["--exp-dir", str(tiny["exp"]), "--output", str(read_only)], capsys)
    assert code == 2 and err.splitlines()[-1] == f"ERROR: cannot write to directory {read_only}: Read-only file system"
    assert list(read_only.iterdir()) == []


def test_sherpa_onnx_decodes_exit_like_ee_asr(tiny):
    pytest.importorskip("sherpa_onnx")
    from ee_asr.export.sherpa import export_sherpa_exit, sherpa_decode

    tok = Tokenizer(tiny["root"] / "bpe.model")
    ours = [" ".join(tok.decode(r["ids"]).split())
            for r in onnx_decode(tiny["onnx"], torch_feats(tiny["wavs"]), "fixed", 2)]
    waves = [read_audio(str(w)) for _, w, _ in tiny["wavs"]]
    # the default graph, for sherpa's [-1, 1] samples (this audio is never near the energy floor)
    assert sherpa_decode(tiny["onnx"] / "sherpa_exit2", waves) == ours
    model, config = load_trained(tiny["exp"])
    int16 = export_sherpa_exit(model, config, 2, tiny["root"] / "sherpa16", int16_samples=True)
    assert sherpa_decode(int16, waves, normalize_samples=False) == ours


def test_benchmark_writes_every_exit_and_policy(tiny, tmp_path, capsys):
    from ee_asr.benchmark.onnx_speed import RSS_ONNX, _peak_rss_mb
    from ee_asr.bin.benchmark_onnx import main as bench_main

    out = tmp_path / "bench.json"
    code, _, _ = run_cli(bench_main, ["--exp-dir", str(tiny["exp"]), "--data-dir", str(tiny["data"]),
                                      "--max-utts", "2", "--repeats", "1", "--no-rss", "--grid", "entropy:0.5",
                                      "--output", str(out)], capsys)
    report = json.loads(out.read_text())
    assert code == 0 and set(report["time"]) == {"2", "4"} and set(report["size"]) == {"2", "4"}
    assert all(t["ort_int8_vs_torch"] > 0 for t in report["time"].values())
    assert [p["policy"] for p in report["policies"]] == ["fixed", "entropy"]
    assert "| 4 |" in out.with_suffix(".md").read_text()
    mb, torch_loaded = _peak_rss_mb(RSS_ONNX, tiny["onnx"], 2, 1, 80)  # a fresh runtime process
    assert 10 < mb < 2000 and not torch_loaded


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_wav2vec2_exits_export_and_decode_like_pytorch(tiny, tmp_path, capsys, norm):
    from test_architectures import HF_TINY, W2V

    from ee_asr.deploy.onnx_backend import OnnxBackend

    exp = tmp_path / "w2v"
    exp.mkdir()
    tok = Tokenizer(tiny["root"] / "bpe.model")
    config = {**W2V, "vocab_size": tok.vocab_size, "bpemodel": str(tiny["root"] / "bpe.model"),
              "token_list": tok.token_list,
              "encoder_conf": {**W2V["encoder_conf"], "hf_config": {**HF_TINY, "feat_extract_norm": norm}}}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = build_model(config).eval()
    torch.save(model.state_dict(), exp / "model.pth")
    assert run_cli(export_main, ["--exp-dir", str(exp)], capsys)[0] == 0  # includes the parity check
    rt = OnnxBackend(exp / "onnx")
    assert rt.manifest["features"] == "raw" and rt.min_frames == 1600
    waves = [read_audio(str(w))[:, None] for _, w, _ in tiny["wavs"][:4]]
    first = sorted(r["scores"][2]["entropy"] for r in onnx_decode(exp / "onnx", waves, "entropy", 1.0))
    threshold = (first[1] + first[2]) / 2
    ours = onnx_decode(exp / "onnx", waves, "entropy", threshold)
    b = max(len(w) for w in waves)
    x = torch.zeros(len(waves), b, 1)
    for i, w in enumerate(waves):
        x[i, :len(w)] = torch.from_numpy(w)
    ref = decode_online(model, x, torch.tensor([len(w) for w in waves]), "entropy", threshold)
    assert [(r["exit"], r["ids"]) for r in ours] == [(r["exit"], r["ids"]) for r in ref]
    assert {r["exit"] for r in ours} == {2, 4}
    code, _, err = run_cli(export_main, ["--exp-dir", str(exp), "--output", str(tmp_path / "s"), "--sherpa-exit", "2"],
                           capsys)
    assert code == 2 and "fbank" in err


def test_numpy_sequence_posterior_equals_torch_ctc_loss():
    from ee_asr.exits.ctc_forward import sequence_posterior as numpy_posterior

    def sequence_posterior(lp, lens, hyps):  # exp(-ctc_loss): the reference the numpy forward replaced
        targets = torch.zeros(len(hyps), max(map(len, hyps)), dtype=torch.long)
        for i, h in enumerate(hyps):
            targets[i, :len(h)] = torch.tensor(h, dtype=torch.long)
        nll = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, lens, torch.tensor([len(h) for h in hyps]),
                                           reduction="none")
        return torch.exp(-nll)

    rng = np.random.default_rng(0)
    lp = torch.log_softmax(torch.tensor(rng.normal(0, 2, (7, 12, 6)), dtype=torch.float32), -1)
    lens = torch.tensor([12, 9, 1, 7, 3, 12, 2])  # padded rows: frames past their length must not count
    # empty, repeats (need a blank between), a single frame, too long for its 2 frames (p = 0)
    hyps = [[1, 2, 2, 3], [], [4], [1, 1, 1, 1], [5, 5], [3, 1, 4, 1, 5, 2], [2, 2]]
    ours = numpy_posterior(lp.numpy(), lens.numpy(), hyps)
    ref = sequence_posterior(lp, lens, hyps).numpy()
    assert ref[-1] == 0.0 and ours[-1] == 0.0 and (ref[:-1] > 0).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-4)
    # the padding itself never matters
    longer = torch.cat([lp, torch.log_softmax(torch.randn(7, 5, 6), -1)], 1)
    np.testing.assert_allclose(numpy_posterior(longer.numpy(), lens.numpy(), hyps), ours, rtol=1e-12)
    assert numpy_posterior(lp.numpy()[:0], np.zeros(0, np.int64), []).shape == (0,)


def split_threshold(values):
    """A threshold between the two distinct sorted values nearest the middle."""
    values = sorted(values)
    gaps = [i for i in range(len(values) - 1) if values[i + 1] - values[i] > 1e-6]
    assert gaps, f"no two distinct scores to split: {values}"
    i = min(gaps, key=lambda g: abs(g - (len(values) - 2) / 2))
    return (values[i] + values[i + 1]) / 2


@pytest.mark.parametrize("policy", ["seqpost", "agree", "learned"])
def test_hypothesis_policies_decide_like_pytorch(tiny, tiny3, policy):
    from ee_asr.deploy.onnx_backend import pad

    feats = torch_feats(tiny["wavs"])
    score = RULES[policy].score
    # agree never stops at the first exit (nothing below it): split the batch at the second
    layer, never = (3, -1.0) if policy == "agree" else (2, 2.0)
    threshold = split_threshold(r["scores"][layer][score] for r in onnx_decode(tiny3["onnx"], feats, policy, never))
    ours = onnx_decode(tiny3["onnx"], feats, policy, threshold)
    assert len({r["exit"] for r in ours}) >= 2
    for f, r in zip(feats, ours):
        alone = onnx_decode(tiny3["onnx"], [f], policy, threshold)[0]
        assert (alone["exit"], alone["ids"]) == (r["exit"], r["ids"])
    model, _ = load_trained(tiny3["exp"])
    engine = torch_engine(model, classifier=load_for_experiment(tiny3["exp"]) if policy == "learned" else None)
    b = pad(feats)
    ref = decode_online(model, torch.from_numpy(b["feats"]), torch.from_numpy(b["feats_lens"]), policy, threshold,
                        engine=engine)
    assert [(r["exit"], r["ids"]) for r in ref] == [(r["exit"], r["ids"]) for r in ours]
    for r, o in zip(ref, ours):
        for at, s in o["scores"].items():  # nothing is scored at the last exit, which answers anyway
            assert (s == {}) if at == 4 else s == pytest.approx({k: r["scores"][at][k] for k in s}, rel=2e-3, abs=1e-6)
            assert at == 4 or set(s) >= ({"p_as_good", *FEATURE_SCORES} if policy == "learned" else {score})


def test_learned_needs_the_exported_classifier(tiny, tiny3, tmp_path, capsys):
    import shutil

    from ee_asr.common.digest import file_sha256
    feats = torch_feats(tiny["wavs"][:1])
    with pytest.raises(UserError, match="fit_exit_classifier"):
        onnx_decode(tiny["onnx"], feats, "learned", 0.5)
    args = ["--exp-dir", str(tiny["exp"]), "--backend", "onnx", "--policy", "learned", "--threshold", "0.5"]
    code, _, err = run_cli(transcribe_main, args + [str(tiny["wavs"][0][1])], capsys)
    assert code == 2 and "names no exit classifier" in err and "export_onnx" in err
    m = json.loads((tiny3["onnx"] / "manifest.json").read_text())
    assert m["exit_classifier_sha256"] == file_sha256(tiny3["exp"] / "exit_classifier.json")
    changed = tmp_path / "onnx"
    shutil.copytree(tiny3["onnx"], changed)
    (changed / m["exit_classifier"]).write_text((changed / m["exit_classifier"]).read_text().replace("1", "2", 1))
    with pytest.raises(UserError, match="sha256 differs"):
        onnx_decode(changed, feats, "learned", 0.5)


@pytest.mark.parametrize("policy,threshold", [("seqpost", 0.2), ("agree", 0.5), ("learned", 0.4)])
def test_transcribe_onnx_takes_the_hypothesis_policies_and_max_layers(tiny, tiny3, policy, threshold, capsys):
    wavs = [str(w) for _, w, _ in tiny["wavs"]]
    for cap in ([], ["--max-layers", "3"]):
        args = ["--exp-dir", str(tiny3["exp"]), "--policy", policy, "--threshold", str(threshold), *cap]
        out = {b: run_cli(transcribe_main, args + ["--backend", b] + wavs, capsys) for b in ("torch", "onnx")}
        lines = {b: [line.rsplit("\t", 1)[0] for line in o[1].splitlines()] for b, o in out.items()}
        assert out["onnx"][0] == 0 and lines["onnx"] == lines["torch"] and len(lines["onnx"]) == len(wavs)
        assert not cap or all(line.endswith(("exit=2", "exit=3")) for line in lines["onnx"])


def test_the_recognizer_takes_paths_and_waveforms_alike_in_both_backends(tiny):
    from ee_asr import Recognizer

    wav = str(tiny["wavs"][3][1])
    wave = read_audio(wav)
    torch_rec, onnx_rec = Recognizer.from_experiment(tiny["exp"], "fixed", 4), Recognizer.from_onnx(tiny["onnx"])
    results = [rec.transcribe(a) for rec in (torch_rec, onnx_rec) for a in (wav, wave)]
    assert len({(r.text, r.exit, tuple(r.ids)) for r in results}) == 1 and results[0].exit == 4
    assert [r.exit for r in onnx_rec.transcribe([wave, wave])] == [4, 4]
    assert onnx_rec.transcribe_one(wave, max_layers=2).exit == 2
    with pytest.raises(UserError, match="needs a threshold"):
        Recognizer.from_onnx(tiny["onnx"], "entropy")
    for rec in (torch_rec, onnx_rec):
        with pytest.raises(UserError, match="too short"):
            rec.transcribe(wave[:800])


def test_transcribe_takes_a_calibrated_threshold_in_both_backends(tiny, tmp_path, capsys):
    import shutil

    from ee_asr.common.digest import file_sha256

    exp = tmp_path / "exp"
    shutil.copytree(tiny["exp"], exp, ignore=shutil.ignore_patterns("onnx"))
    entries = [{"policy": "fixed", "threshold": 2, "max_wer_increase": 1.0, "confidence": 0.9, "last_exit": 4},
               {"policy": "entropy", "threshold": None, "max_wer_increase": 1.0, "confidence": 0.9, "last_exit": 4}]
    (exp / "calibration.json").write_text(json.dumps({"entries": entries}))
    shutil.copytree(tiny["onnx"], exp / "onnx")
    manifest = json.loads((exp / "onnx" / "manifest.json").read_text())
    assert manifest["calibration"] is None  # the tiny experiment was exported without one
    shutil.copy(exp / "calibration.json", exp / "onnx" / "calibration.json")
    manifest.update(calibration="calibration.json", calibration_sha256=file_sha256(exp / "calibration.json"))
    (exp / "onnx" / "manifest.json").write_text(json.dumps(manifest))
    wav = str(tiny["wavs"][0][1])
    for backend in ("torch", "onnx"):
        for policy, exit_ in (("fixed", 2), ("entropy", 4)):  # entropy certified nothing: the last exit
            code, out, _ = run_cli(transcribe_main, ["--exp-dir", str(exp), "--backend", backend, "--policy", policy,
                                                     "--max-wer-increase", "1", wav], capsys)
            assert code == 0 and out.split("\t")[2] == f"exit={exit_}", (backend, policy, out)
        code, _, err = run_cli(transcribe_main, ["--exp-dir", str(exp), "--backend", backend, "--policy", "fixed",
                                                 "--max-wer-increase", "0.5", wav], capsys)
        assert code == 2 and "calibration.json: no calibration for policy 'fixed'" in err
