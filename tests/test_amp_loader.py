"""Mixed precision and background loading: bfloat16 autocast trains what float32 does within a
stated tolerance, the losses stay float32, the float16 scaler's state survives a checkpoint, and
workers hand over exactly the batches the training thread would have read, so resume stays
bit-exact with both on."""

import pytest
import torch
import yaml
from faults_setup import make_corpus, train_args, weights_digest

from conftest import run_py
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.loader import WaitClock, batch_loader, to_device
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.models.registry import build_model
from ee_asr.train.amp import MixedPrecision
from ee_asr.train.config import DEFAULTS

TINY = {**DEFAULTS, "input_size": 80, "vocab_size": 20, "normalize": None, "specaug": None,
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 4,
                         "exit_layers": [2, 4], "cnn_module_kernel": 7, "input_layer": "conv2d"}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("amp"))


def losses_and_grads(model, batch, amp):
    model.zero_grad()
    torch.manual_seed(0)  # the same dropout masks for both precisions
    _, x, xl, y, yl = batch
    with amp.autocast():
        loss, stats = model(x, xl, y, yl)
    amp.backward(loss)
    return stats, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_bf16_autocast_matches_float32_within_tolerance(corpus):
    data = FeatureDataset(corpus / "train", Tokenizer(corpus / "bpe.model"))
    batch = data.collate(sorted(data.lengths)[:4])
    torch.manual_seed(0)
    model = build_model(TINY).train()
    fp32 = losses_and_grads(model, batch, MixedPrecision(False, "bfloat16", "cpu"))
    bf16 = losses_and_grads(model, batch, MixedPrecision(True, "bfloat16", "cpu"))
    for key in ("loss_exit2", "loss_exit4", "loss"):
        assert bf16[0][key].dtype == torch.float32  # the CTC losses leave autocast in float32
        # stated tolerance: 1% of the loss (bfloat16 keeps 8 mantissa bits, 0.4% per rounding)
        assert abs(float(bf16[0][key]) - float(fp32[0][key])) <= 0.01 * abs(float(fp32[0][key]))
    g32 = torch.cat([g.flatten() for g in fp32[1].values()])
    g16 = torch.cat([bf16[1][n].flatten() for n in fp32[1]])
    # the whole gradient within 5% (relative L2; 1.5% measured) and pointing the same way
    assert (g16 - g32).norm() <= 0.05 * g32.norm()
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99
    assert not torch.equal(g16, g32)  # autocast did run in bfloat16


def test_the_float16_scaler_state_round_trips_and_is_empty_without_one(tmp_path):
    amp = MixedPrecision(True, "float16", "cpu")
    assert amp.scaler.is_enabled() and "scaler" in amp.describe()
    state = amp.state_dict()
    state["scale"] = 1024.0
    torch.save({"amp": state}, tmp_path / "s.pth")
    fresh = MixedPrecision(True, "float16", "cpu")
    fresh.load_state_dict(torch.load(tmp_path / "s.pth")["amp"], "s.pth")
    assert fresh.scaler.get_scale() == 1024.0
    off = MixedPrecision(False, "float16", "cpu")
    assert off.state_dict() == {} and off.describe() == "float32"
    off.load_state_dict({}, "s.pth")  # a float32 run's checkpoint loads into a float32 run
    bf16 = MixedPrecision(True, "bfloat16", "cpu")
    assert not bf16.scaler.is_enabled()  # bfloat16 has float32's range: nothing to scale


def test_the_float16_scaler_skips_an_overflowing_step_and_lowers_its_scale():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    amp = MixedPrecision(True, "float16", "cpu")
    scale = amp.scaler.get_scale()
    amp.backward((p * torch.tensor(float("inf"))).sum())
    amp.unscale(opt)
    amp.step(opt, finite=bool(torch.isfinite(torch.nn.utils.clip_grad_norm_([p], 5.0))))
    assert torch.equal(p.detach(), torch.ones(3)) and amp.scaler.get_scale() < scale


def test_workers_hand_over_the_planned_batches_in_order(corpus):
    data = FeatureDataset(corpus / "train", Tokenizer(corpus / "bpe.model"))
    utts = sorted(data.lengths)
    plan = [utts[4:7], utts[0:2], utts[2:4], [utts[7]]]
    clock = WaitClock()
    got = list(clock.timed(batch_loader(data, plan, num_workers=2, prefetch_factor=2)))
    assert [b[0] for b in got] == plan
    for batch, utt_ids in zip(got, plan):
        expect = data.collate(utt_ids)
        for a, b in zip(batch[1:], expect[1:]):
            assert torch.equal(a, b)
    moved = to_device(got[0], torch.device("cpu"))
    assert moved[0] == plan[0] and torch.equal(moved[1], got[0][1])
    summary = clock.summary()
    assert clock.steps == 4 and 0 < summary["loader_wait_seconds"] <= summary["loop_seconds"]


def test_config_rejects_bad_amp_and_worker_values(tmp_path):
    for bad in ("use_amp: 1", "amp_dtype: fp8", "num_workers: -1", "prefetch_factor: 0"):
        (tmp_path / "c.yaml").write_text(bad + "\n")
        proc = run_py("ee_asr.bin.train", "--config", str(tmp_path / "c.yaml"), "--train-dir", "x", "--valid-dir",
                      "x", "--bpemodel", "x", "--exp-dir", str(tmp_path / "e"), check=False)
        assert proc.returncode != 0 and bad.split(":")[0] in proc.stderr and "Traceback" not in proc.stderr


def test_resume_with_workers_and_float16_scaler_is_bit_exact(corpus):
    cfg = yaml.safe_load((corpus / "conf.yaml").read_text())
    cfg.update(use_amp=True, amp_dtype="float16", max_epoch=2)
    (corpus / "amp.yaml").write_text(yaml.safe_dump(cfg))

    def args(exp, *extra):
        a = train_args(corpus, corpus / exp, *extra)
        a[a.index("--config") + 1] = str(corpus / "amp.yaml")
        return a

    run_py("ee_asr.bin.train", *args("ref"))
    run_py("ee_asr.bin.train", *args("split", "--max-epoch", "1", "--set", "num_workers=2"))
    run_py("ee_asr.bin.train", *args("split", "--set", "num_workers=2"))
    log = (corpus / "split" / "train.rank0.log").read_text()
    assert "resumed from" in log and "float16 autocast with a gradient scaler" in log
    assert "waited" in log and "2 workers" in log
    state = torch.load(corpus / "split" / "checkpoints" / "latest.pth", weights_only=False)
    assert "scale" in state["amp"] and "loader_wait_fraction" in state["history"][-1]
    assert weights_digest(corpus / "split" / "checkpoints" / "latest.pth") == \
        weights_digest(corpus / "ref" / "checkpoints" / "latest.pth")
