"""bin.benchmark_train: ESPnet's InterCTC model is built at our exits and shape, every variant is
timed on the same batches, and the loading passes train on the same planned batches."""

import json

import pytest
import torch
from faults_setup import make_corpus
from test_online_features import online_dump

from conftest import run_py
from ee_asr.benchmark.train_speed import espnet_interctc_model, model_variants, synthetic_batches, time_model_steps
from ee_asr.models.registry import build_model
from ee_asr.train.config import DEFAULTS

TINY = {**DEFAULTS, "input_size": 80, "vocab_size": 30,
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 4,
                         "exit_layers": [2, 4], "cnn_module_kernel": 7, "input_layer": "conv2d"}}


def test_espnet_model_has_interctc_at_our_exits_and_our_block_shape():
    ours = build_model({**TINY, "normalize": None})
    theirs = espnet_interctc_model(TINY)
    assert theirs.encoder.interctc_layer_idx == [2] and len(theirs.encoder.encoders) == 4
    assert 0 < theirs.interctc_weight < 1

    def count(module):
        return sum(p.numel() for p in module.parameters())

    # the same blocks and subsampling; ours adds a LayerNorm and a CTC head per exit
    assert count(ours.encoder.encoders) == count(theirs.encoder.encoders)
    assert count(ours.encoder.embed) == count(theirs.encoder.embed)
    # ESPnet's CTC stays float32 under autocast, as ours does
    batch = synthetic_batches(1, 600, 80, 30)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats, _ = theirs(*batch[1:])
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and "loss_interctc_layer2" in stats


def test_every_variant_is_timed_on_the_same_batches():
    batches = synthetic_batches(2, 800, 80, 30)
    assert [b[1].shape[1] for b in batches] == [400, 600]  # longest 4 s then 6 s
    variants = model_variants(TINY, (False, True))
    assert set(variants) == {"ours_fp32", "ours_bf16", "espnet_interctc_fp32", "espnet_interctc_bf16"}
    out = time_model_steps(variants, batches, repeats=1)
    audio = sum(float(b[2].sum()) / 100 for b in batches) / 2
    for v in out.values():
        assert v["audio_seconds_per_step"] == pytest.approx(audio)
        assert v["step_seconds_wall"] > 0 and v["audio_seconds_per_wall_second"] == pytest.approx(
            audio / v["step_seconds_wall"])


def test_cli_writes_json_with_ratios_and_loading_passes(tmp_path):
    root = make_corpus(tmp_path / "c")
    online_dump(root / "train", root / "train_online")
    (tmp_path / "tiny.yaml").write_text(
        "encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 4, exit_layers: [2, 4],"
        " cnn_module_kernel: 7, input_layer: conv2d}\nbatch_bins: 150\n")
    out = tmp_path / "b.json"
    run_py("ee_asr.bin.benchmark_train", "--config", str(tmp_path / "tiny.yaml"), "--steps", "1", "--repeats", "1",
           "--vocab-size", "30", "--batch-bins", "600", "--data-dir", str(root / "train"), "--bpemodel",
           str(root / "bpe.model"), "--workers", "0", "2", "--loader-steps", "3", "--output", str(out),
           "--online-data-dir", str(root / "train_online"))
    result = json.loads(out.read_text())
    assert result["step_ratio_fp32_wall"] > 0 and result["step_ratio_bf16_cpu"] > 0
    passes = result["loading"]["passes"]
    assert [(p["source"], p["num_workers"]) for p in passes] == [("dump", 0), ("dump", 2), ("online", 0), ("online", 2)]
    assert all(p["steps"] == 3 for p in passes) and result["loading"]["online_over_dump_2_workers"] > 0
    assert all(0 <= p["loader_wait_fraction"] <= 1 for p in passes)
