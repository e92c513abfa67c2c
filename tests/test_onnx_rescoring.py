"""An early-exit AED exported for attention rescoring: the decoder graphs, their fp32 parity and
int8 check at export, and the torch-free rescoring against PyTorch's, on a tiny random AED."""

import json
import os
import subprocess
import sys

import kaldiio
import pytest
import torch
from test_onnx import ENCODER  # the same tiny Conformer as the CTC export's

from conftest import ROOT, random_experiment, tiny_dump
from ee_asr.bin.export_onnx import main as export_main
from ee_asr.common.errors import UserError
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.attention_rescoring import AttentionRescoring
from ee_asr.exits.rescore_rule import best_index
from ee_asr.models.load import load_trained

SENTENCES = ["hello world", "good morning", "early exit", "speech recognition", "a small model", "on the device"]


@pytest.fixture(scope="module")
def tiny_aed(tmp_path_factory):
    """{exp, onnx, feats}: a random AED with exits 2 and 4, exported with int8 and checked on 6 utterances."""
    root = tmp_path_factory.mktemp("aed_onnx")
    data, _, tok = tiny_dump(root, SENTENCES, 0.6)
    config = {"encoder": "conformer_ee", "encoder_conf": ENCODER, "model": "aed_ee",
              "model_conf": {"decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1}},
              "normalize": None, "input_size": 80, "vocab_size": tok.vocab_size, "bpemodel": str(root / "bpe.model"),
              "token_list": tok.token_list}
    exp = random_experiment(root / "exp", config, ctc_scale=5.0)
    export_main(["--exp-dir", str(exp), "--int8", "--data-dir", str(data), "--force", "--rescore-nbest", "4",
                 "--rescore-weight", "0.3"])
    feats = [f for _, f in kaldiio.load_scp_sequential(str(data / "feats.scp"))]
    return {"exp": exp, "onnx": exp / "onnx", "feats": feats}


def test_export_lists_each_exits_decoder_with_its_parity_and_int8_check(tiny_aed):
    onnx = tiny_aed["onnx"]
    m = json.loads((onnx / "manifest.json").read_text())
    assert [d["exit"] for d in m["decoders"]] == [2, 4]
    assert all((onnx / d["fp32"]).is_file() and (onnx / d["int8"]).is_file() for d in m["decoders"])
    assert all(d["max_abs_diff_vs_torch"] <= 1e-3 for d in m["decoders"])
    rows = json.loads((onnx / "results.json").read_text())["int8"]["rescoring_exits"]
    assert [r["exit"] for r in rows] == [2, 4] and all(r["cer_fp32"] >= 0 for r in rows)
    assert "Attention rescoring at every exit (CTC 4-best, CTC weight 0.3" in (onnx / "RESULTS.md").read_text()
    # the options the export was checked with are the runtime's defaults
    assert m["rescoring"] == {"nbest_size": 4, "ctc_weight": 0.3, "length_bonus": 0.0}
    from ee_asr.deploy.onnx_backend import OnnxBackend
    from ee_asr.deploy.rescoring import OnnxRescoring

    r = OnnxRescoring(OnnxBackend(onnx))
    assert (r.source.nbest_size, r.ctc_weight, r.length_bonus) == (4, 0.3, 0.0)
    parity = json.loads((onnx / "results.json").read_text())["fp32_parity"]
    assert all(r["rescoring_same_output_share"] == 1.0 and r["rescoring_max_abs_att_diff"] <= 1e-3 for r in parity)


def test_onnx_rescoring_chooses_as_pytorch_does_on_a_padded_batch(tiny_aed):
    from ee_asr.decode.torch_backend import torch_engine
    from ee_asr.deploy.onnx_backend import OnnxBackend, onnx_engine, pad
    from ee_asr.deploy.rescoring import OnnxRescoring
    from ee_asr.exits.policies import Policy

    model, _ = load_trained(tiny_aed["exp"])
    feats = tiny_aed["feats"]
    batch = pad(feats)
    x, xl = torch.from_numpy(batch["feats"]), torch.from_numpy(batch["feats_lens"])
    outs, olens = model.exit_hidden(x, xl)
    options = {"nbest_size": 5, "ctc_weight": 0.3, "length_bonus": 0.2}
    backend = OnnxBackend(tiny_aed["onnx"])
    onnx, torch_side = OnnxRescoring(backend, **options), AttentionRescoring(model, **options)
    onnx_eng, torch_eng = onnx_engine(tiny_aed["onnx"], rescoring=options), torch_engine(model, search=torch_side)
    carry = batch
    for k, (layer, hidden) in enumerate(outs):
        carry = backend.advance(carry, k)
        ours = onnx.rescore(k, carry["hidden"], carry["lengths"], carry["log_probs"])
        ref = torch_side.rescore(k, hidden, olens, model.head(k).log_softmax(hidden).detach().numpy())
        assert [[h for h, *_ in nb] for nb in ours] == [[h for h, *_ in nb] for nb in ref]
        assert max(abs(a[2] - b[2]) for x, y in zip(ours, ref) for a, b in zip(x, y)) <= 1e-3
        assert len({h for nb in ours for h, *_ in nb}) > len(feats)  # N-bests, not single hypotheses
        point = Policy("fixed", layer)
        assert [r["ids"] for r in onnx_eng.decode(feats, point)] == [r["ids"] for r in torch_eng.decode((x, xl), point)]
    with pytest.raises(UserError, match="not an exit layer"):
        onnx_eng.decode(feats, Policy("entropy", 0.1, max_layers=3))


def test_rescoring_refuses_an_export_without_decoders(tiny_aed):
    from ee_asr.deploy.onnx_backend import OnnxBackend
    from ee_asr.deploy.rescoring import OnnxRescoring

    rt = OnnxBackend(tiny_aed["onnx"])
    rt.manifest = {**rt.manifest, "decoders": None}  # what a CTC model's export lists
    with pytest.raises(UserError, match="lists no decoders"):
        OnnxRescoring(rt)
    with pytest.raises(UserError, match="N-best size"):
        OnnxRescoring(OnnxBackend(tiny_aed["onnx"]), nbest_size=0)


def test_onnx_rescoring_int8_runs_without_torch(tiny_aed):
    code = f"""
import sys
import kaldiio
from ee_asr.deploy.onnx_backend import onnx_engine
from ee_asr.exits.policies import Policy
feats = [f for _, f in kaldiio.load_scp_sequential({str(tiny_aed['onnx'].parent.parent / 'dump' / 'feats.scp')!r})]
engine = onnx_engine({str(tiny_aed['onnx'])!r}, int8=True, rescoring={{}})
ids = [r["ids"] for r in engine.decode(feats, Policy("fixed", 4))]
assert len(ids) == len(feats) and all(isinstance(t, int) for seq in ids for t in seq)
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_benchmark_searches_times_every_search_at_every_exit_and_pairs_rescoring_with_joint(tiny_aed, tmp_path):
    import shutil

    from ee_asr.bin.benchmark_searches import main as bench_main

    dump = tiny_aed["onnx"].parent.parent / "dump"
    shutil.copyfile(dump / "feats.num_frames", dump / "utt2num_frames")
    out = tmp_path / "bench.json"
    bench_main(["--exp-dir", str(tiny_aed["exp"]), "--data-dir", str(dump), "--beam-size", "2",
                "--rescore-nbest", "3", "--ctc-exp-dir", str(tiny_aed["exp"]), "--output", str(out)])
    res = json.loads(out.read_text())
    rows = {(r["exit"], r["search"]): r for r in res["rows"]}
    assert {k for k in rows if k[0] is not None} == {(e, s) for e in (2, 4)
                                                     for s in ("greedy", "joint", "rescore", "encoder only")}
    assert "wer" not in rows[(2, "encoder only")] and rows[(4, "encoder only")]["ratio_to_last_exit"] == 1.0
    assert all(rows[(e, "joint")]["ratio_to_joint"] == 1.0 for e in (2, 4))
    assert all(rows[(4, s)]["ratio_to_last_exit"] == 1.0 for s in ("greedy", "joint", "rescore"))
    assert all(r["seconds"] > 0 for r in res["rows"]) and res["utterances"] == len(SENTENCES)
    assert [p["exit"] for p in res["paired"]] == [2, 4]
    for p in res["paired"]:
        assert p["difference"] == pytest.approx(rows[(p["exit"], "rescore")]["wer"] - rows[(p["exit"], "joint")]["wer"])
        assert p["interval"][0] <= p["difference"] <= p["interval"][1]


def test_decode_cli_rescores_every_exit(tiny_aed, tmp_path):
    import shutil

    from ee_asr.bin.decode import main as decode_main

    dump = tiny_aed["onnx"].parent.parent / "dump"
    shutil.copyfile(dump / "feats.num_frames", dump / "utt2num_frames")
    decode_main(["--exp-dir", str(tiny_aed["exp"]), "--data-dir", str(dump), "--output", str(tmp_path / "dec"),
                 "--search", "rescore", "--rescore-nbest", "4", "--rescore-weight", "0.3"])
    records = [json.loads(line) for line in (tmp_path / "dec" / "exits.jsonl").read_text().splitlines()]
    assert sorted({r["exit"] for r in records}) == [2, 4] and len(records) == 2 * len(SENTENCES)
    model, _ = load_trained(tiny_aed["exp"])
    tok = Tokenizer(tiny_aed["exp"].parent / "bpe.model")
    rescoring = AttentionRescoring(model, 4, 0.3)
    for utt, f in kaldiio.load_scp_sequential(str(dump / "feats.scp")):
        x = torch.tensor(f)[None]
        outs, olens = model.exit_hidden(x, torch.tensor([len(f)]))
        for k, (layer, hidden) in enumerate(outs):
            ranked = rescoring.rescore(k, hidden, olens, model.head(k).log_softmax(hidden).detach().numpy())[0]
            ids = list(ranked[best_index([t for *_, t in ranked])][0])
            assert next(r["hyp"] for r in records if r["utt"] == utt and r["exit"] == layer) == tok.decode(ids)


def test_tune_rescoring_grid_point_gives_the_wer_decode_gives_with_those_options(tiny_aed, tmp_path):
    import shutil

    from ee_asr.bin.decode import main as decode_main
    from ee_asr.bin.tune_rescoring import main as tune_main

    dump = tiny_aed["onnx"].parent.parent / "dump"
    shutil.copyfile(dump / "feats.num_frames", dump / "utt2num_frames")
    tune_main(["--exp-dir", str(tiny_aed["exp"]), "--data-dir", str(dump), "--nbest", "2", "4",
               "--ctc-weight", "0.3", "1.0", "--length-bonus", "0", "0.5", "--output", str(tmp_path / "t.json")])
    res = json.loads((tmp_path / "t.json").read_text())
    assert len(res["rows"]) == 2 * 2 * 2 * 2 and set(res["best"]) == {"nbest", "ctc_weight", "length_bonus"}
    decode_main(["--exp-dir", str(tiny_aed["exp"]), "--data-dir", str(dump), "--output", str(tmp_path / "dec"),
                 "--search", "rescore", "--rescore-nbest", "4", "--rescore-weight", "0.3", "--length-bonus", "0.5"])
    records = [json.loads(line) for line in (tmp_path / "dec" / "exits.jsonl").read_text().splitlines()]
    for layer in (2, 4):
        errors = sum(r["errors"] for r in records if r["exit"] == layer)
        row = next(r for r in res["rows"] if (r["exit"], r["nbest"], r["ctc_weight"], r["length_bonus"])
                   == (layer, 4, 0.3, 0.5))
        assert row["errors"] == errors


def test_transcribe_rescores_in_both_backends_alike(tiny_aed, tmp_path, capsys):
    from ee_asr.bin.transcribe import main as transcribe_main
    from ee_asr.common.cli import run_main

    wavs = [str(w) for w in sorted((tiny_aed["onnx"].parent.parent).glob("*.wav"))][:3]
    assert wavs
    outs = {}
    for backend in ("torch", "onnx"):
        capsys.readouterr()
        run_main(transcribe_main, ["--exp-dir", str(tiny_aed["exp"]), "--backend", backend, "--policy", "fixed",
                                   "--threshold", "4", "--search", "rescore", "--rescore-nbest", "4",
                                   "--rescore-weight", "0.3", *wavs])
        outs[backend] = [line.rsplit("\t", 1)[0] for line in capsys.readouterr().out.splitlines()]
    assert outs["torch"] == outs["onnx"] and len(outs["onnx"]) == len(wavs)
