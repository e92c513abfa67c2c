"""Blank frames dropped above an exit (exits/blank_skip.py), in the PyTorch and ONNX backends, on
the tiny random-weight experiments of test_onnx.py (tiny3: exits 2, 3, 4, a blank-heavy head)."""

import numpy as np
import pytest
import torch
from test_onnx import tiny, tiny3, torch_feats  # noqa: F401 (fixtures)

from ee_asr.common.errors import UserError
from ee_asr.data.tokenizer import BLANK_ID
from ee_asr.decode.torch_backend import TorchBackend, torch_engine
from ee_asr.deploy.onnx_backend import onnx_engine, pad
from ee_asr.exits.blank_skip import BlankSkipping, keep_mask
from ee_asr.exits.policies import Policy
from ee_asr.models.load import load_trained


@pytest.fixture(scope="module")
def setup(tiny, tiny3):  # noqa: F811
    """(model, feats, threshold): a threshold between two exit-2 blank posteriors far apart, so that
    about half the frames are dropped and float noise between backends flips none."""
    model, _ = load_trained(tiny3["exp"])
    feats = torch_feats(tiny["wavs"])
    backend = TorchBackend(model)
    b = pad(feats)
    state = backend.advance(backend.start((torch.from_numpy(b["feats"]), torch.from_numpy(b["feats_lens"]))), 0)
    logp, lengths = backend.log_probs(state, 0)
    blank = np.sort(np.concatenate([np.exp(logp[i, :n, BLANK_ID]) for i, n in enumerate(lengths)]))
    lo = len(blank) // 4
    gap = np.argmax(np.diff(blank[lo:3 * lo])) + lo
    return model, feats, float((blank[gap] + blank[gap + 1]) / 2)


def batch(feats):
    b = pad(feats)
    return torch.from_numpy(b["feats"]), torch.from_numpy(b["feats_lens"])


def test_keep_mask_drops_blank_frames_within_lengths_and_keeps_at_least_one():
    blank = np.log(np.array([[0.99, 0.2, 0.97, 0.1], [0.99, 0.98, 0.5, 0.5]]))
    keep = keep_mask(blank, np.array([4, 2]), 0.95)
    assert keep.tolist() == [[False, True, False, True], [False, True, False, False]]


def test_a_threshold_above_one_decodes_exactly_as_without_skipping(setup):
    model, feats, _ = setup
    x = batch(feats)
    plain, skip = torch_engine(model), torch_engine(model, blank_skip=([2], 1.5))
    assert skip.decode_every_exit(x) == plain.decode_every_exit(x)
    for policy in (Policy("entropy", 0.3), Policy("fixed", 4)):
        a, b = plain.decode(x, policy), skip.decode(x, policy)
        assert [(r["exit"], r["ids"], r["scores"]) for r in a] == [(r["exit"], r["ids"], r["scores"]) for r in b]


def frames_seen_above_exit_2(engine, model, x):
    seen = []
    hook = model.encoder.encoders[2].register_forward_pre_hook(lambda m, args: seen.append(
        (args[0][0].size(1), int(args[1].sum()))))
    try:
        out = engine.decode_every_exit(x, fields=())
        state = engine.backend.start(x)
        for i in range(len(engine.exit_layers)):
            state = engine.backend.advance(state, i)
            logp, lengths = engine.backend.log_probs(state, i)
    finally:
        hook.remove()
    return seen[0], out, logp, lengths


def test_layers_above_see_fewer_frames_and_output_lengths_are_unchanged(setup):
    model, feats, threshold = setup
    x = batch(feats)
    (width, valid), plain, logp0, lens0 = frames_seen_above_exit_2(torch_engine(model), model, x)
    (width2, valid2), skip, logp, lens = frames_seen_above_exit_2(
        torch_engine(model, blank_skip=([2], threshold)), model, x)
    assert valid2 < valid * 0.9 and width2 <= width
    assert lens.tolist() == lens0.tolist() and logp.shape == logp0.shape
    # exit 2 is below the skipping: the same; above, dropped frames are certain blanks
    assert [r[2] for r in skip] == [r[2] for r in plain]
    assert (np.exp(logp[..., BLANK_ID]) > 0.999).sum() > (np.exp(logp0[..., BLANK_ID]) > 0.999).sum()


@pytest.mark.parametrize("after", [[2], [2, 3]])
def test_skipping_batched_equals_one_by_one_and_onnx_equals_pytorch(setup, tiny3, after):  # noqa: F811
    model, feats, threshold = setup
    engine = torch_engine(model, blank_skip=(after, threshold))
    onnx = onnx_engine(tiny3["onnx"], blank_skip=(after, threshold))
    policy = Policy("entropy", 0.05)
    together = engine.decode(batch(feats), policy)
    assert [(r["exit"], r["ids"]) for r in onnx.decode(feats, policy)] == [(r["exit"], r["ids"]) for r in together]
    for f, r in zip(feats, together):
        alone = engine.decode(batch([f]), policy)[0]
        assert (alone["exit"], alone["ids"]) == (r["exit"], r["ids"])
    every = engine.decode_every_exit(batch(feats), fields=("entropy",))
    onnx_every = onnx.decode_every_exit(feats, fields=("entropy",))
    for a, b in zip(every, onnx_every):
        assert [a[e]["ids"] for e in (2, 3, 4)] == [b[e]["ids"] for e in (2, 3, 4)]
        assert a[4]["scores"]["entropy"] == pytest.approx(b[4]["scores"]["entropy"], abs=1e-4)


def test_skipping_after_the_last_exit_or_with_a_threshold_of_zero_is_refused(setup):
    backend = TorchBackend(setup[0])
    with pytest.raises(UserError, match="not an exit below the last"):
        BlankSkipping(backend, [4], 0.9)
    with pytest.raises(UserError, match="threshold must be > 0"):
        BlankSkipping(backend, [2], 0.0)
    assert BlankSkipping(backend, [3, 2], 0.9).blank_skip == [[2, 3], 0.9]


def test_transcribe_with_skipping_agrees_in_both_backends(setup, tiny, tiny3, capsys):  # noqa: F811
    from test_onnx import run_cli

    from ee_asr.bin.transcribe import main as transcribe_main

    wavs = [str(w) for _, w, _ in tiny["wavs"]]
    args = ["--exp-dir", str(tiny3["exp"]), "--policy", "entropy", "--threshold", "0.05",
            "--blank-skip-threshold", str(setup[2]), "--blank-skip-after", "2"]
    out = {b: run_cli(transcribe_main, args + ["--backend", b] + wavs, capsys) for b in ("torch", "onnx")}
    lines = {b: [line.rsplit("\t", 1)[0] for line in o[1].splitlines()] for b, o in out.items()}
    assert out["torch"][0] == out["onnx"][0] == 0
    assert lines["torch"] == lines["onnx"] and len(lines["onnx"]) == len(wavs)
    code, _, err = run_cli(transcribe_main, args[:-2] + wavs, capsys)
    assert code != 0 and "--blank-skip-after" in err


def test_training_with_skipping_drops_the_frames_decoding_drops(setup):
    import copy

    _, feats, threshold = setup
    model = copy.deepcopy(setup[0])  # training updates the BatchNorm statistics: not the shared model's
    x, xl = batch(feats)
    model.blank_skip = (2, threshold)
    with torch.no_grad():
        outs = model.skipping_exit_outputs(*model.prepare(x, xl))
    backend = torch_engine(model, blank_skip=([2], threshold)).backend
    state = backend.start((x, xl))
    for i, (layer, hidden, lengths) in enumerate(outs):
        state = backend.advance(state, i)
        backend.log_probs(state, i)
        assert state.compact[1].tolist() == lengths.tolist()
        np.testing.assert_allclose(state.compact[0], model.head(i).log_softmax(hidden).detach().numpy(),
                                   atol=1e-5)
    assert outs[-1][2].sum() < outs[0][2].sum()
    model.train()
    tokens = torch.tensor([[3, 4, 5]] * len(feats))
    loss, stats = model(x, xl, tokens, torch.tensor([3] * len(feats)))
    loss.backward()
    assert torch.isfinite(loss) and {"loss_exit2", "loss_exit3", "loss_exit4"} <= set(stats)
    assert model.encoder.encoders[3].feed_forward.w_1.weight.grad.abs().sum() > 0


def test_decode_dirs_name_the_skipping_and_half_an_option_is_refused():
    from ee_asr.api.options import blank_skip_suffix
    from ee_asr.bin.decode_policy import get_parser

    def args(*extra):
        return get_parser().parse_args(["--exp-dir", "x", "--data-dir", "x", "--policy", "fixed", "--threshold", "4",
                                        *extra])

    assert blank_skip_suffix(args()) == ""
    assert blank_skip_suffix(args("--blank-skip-threshold", "0.95", "--blank-skip-after", "4")) == "_skip4_0.95"
    with pytest.raises(UserError, match="--blank-skip-threshold"):
        blank_skip_suffix(args("--blank-skip-after", "4"))


def test_the_benchmark_table_has_fixed_exits_skipping_and_policies_with_paired_changes(setup, tiny3, tmp_path):  # noqa: F811
    from ee_asr.benchmark.blank_skip_speed import blank_skip_table, markdown, plot

    model, feats, threshold = setup
    batches = [(None, *batch(feats), None, None)]

    def utt_errors(results):  # a stand-in for WER: a hypothesis's length is its errors
        return [(len(r["ids"]), 5) for r in results]

    from ee_asr.benchmark.blank_skip_speed import onnx_inputs, torch_inputs

    def torch_for(skip):
        return torch_engine(model, blank_skip=None if skip is None else ([skip[0]], skip[1]))

    def onnx_for(skip):
        return onnx_engine(tiny3["onnx"], blank_skip=None if skip is None else ([skip[0]], skip[1]))

    rows = blank_skip_table(torch_for, torch_inputs(batches), utt_errors, [(2, threshold)], [("entropy", 0.05)], 1)
    onnx_rows = blank_skip_table(onnx_for, onnx_inputs(batches), utt_errors, [(2, threshold)], [("entropy", 0.05)], 1)
    assert [(r["wer"], r["mean_exit"], r.get("kept")) for r in rows] == [
        (r["wer"], r["mean_exit"], r.get("kept")) for r in onnx_rows]
    assert [(r["policy"], r["threshold"], r["skip"]) for r in rows] == [
        ("fixed", 2, None), ("fixed", 3, None), ("fixed", 4, None), ("fixed", 4, (2, threshold)),
        ("entropy", 0.05, None), ("entropy", 0.05, (2, threshold))]
    assert rows[2]["time_ratio"] == 1.0 and 0 < rows[3]["kept"] < 0.9
    assert "wer_change_interval" in rows[3] and "fixed_wer_at_time" in rows[5]
    assert markdown(rows).count("\n") == len(rows) + 1
    plot(rows, tmp_path / "skip.png", "tiny")
    assert (tmp_path / "skip.png").stat().st_size > 1000


def test_decode_policy_records_the_skipping_in_its_dir_and_summary(setup, tiny, tiny3, tmp_path):  # noqa: F811
    import json
    import shutil

    from ee_asr.bin.decode_policy import main as decode_policy_main

    exp = tmp_path / "exp"
    shutil.copytree(tiny3["exp"], exp, ignore=shutil.ignore_patterns("onnx"))
    data = shutil.copytree(tiny["data"], tmp_path / "dump")
    (data / "feats.num_frames").rename(data / "utt2num_frames")
    thr = round(setup[2], 4)
    decode_policy_main(["--exp-dir", str(exp), "--data-dir", str(data), "--policy", "entropy",
                        "--threshold", "0.05", "--blank-skip-threshold", str(thr), "--blank-skip-after", "2"])
    out = exp / f"decode_dump_skip2_{thr:g}" / "policy_entropy" / "thr_0.05"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["blank_skip"] == [[2], thr] and summary["utterances"] == len(tiny["wavs"])
