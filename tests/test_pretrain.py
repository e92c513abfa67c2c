"""Self-supervised Wav2Vec2 pre-training (train/pretrain.py): it learns, resumes bit for bit, saves a
Hugging Face checkpoint that the fine-tuning path loads, and refuses bad input by name."""

import os

import pytest
import torch
import yaml
from test_architectures import HF_TINY

from conftest import TEXTS, run_py, write_wav
from ee_asr.common.errors import UserError
from ee_asr.data.features import write_features
from ee_asr.models.wav2vec2_ee import Wav2Vec2EEEncoder, read_pretrained_config
from ee_asr.train.pretrain import Pretrainer, arch_from_training_config, pretrain

ARCH = {"encoder": "wav2vec2_ee",
        "encoder_conf": {"exit_layers": [2, 4], "freeze_feature_encoder": False, "branch_init_scale": 0.0,
                         "hf_config": {**HF_TINY, "do_stable_layer_norm": True}},
        "model": "ctc_ee", "model_conf": {"shared_head": True}, "normalize": "utterance_mvn",
        "normalize_conf": {"norm_vars": True}, "optim_conf": {"lr": 0.001}, "scheduler_conf": {"warmup_steps": 2},
        "max_epoch": 1, "batch_bins": 40000, "min_frames": 4000, "log_interval": 2}
OPTS = {"max_updates": 4, "batch_bins": 40000, "lr": 0.001, "warmup": 2, "mask_prob": 0.5, "mask_length": 2,
        "num_negatives": 4, "codevector_groups": 2, "codevectors_per_group": 8, "codevector_dim": 16,
        "diversity_weight": 0.1, "grad_clip": 5.0, "seed": 0, "num_threads": 1, "log_interval": 2, "save_every": 2}


def raw_dump(root, name, n):
    d = root / name
    d.mkdir(parents=True)
    wav, text = [], []
    for i in range(n):
        utt = f"{name}{i:02d}"
        write_wav(root / f"{utt}.wav", 0.8 + 0.1 * (i % 4), seed=i)
        wav.append(f"{utt} {root / f'{utt}.wav'}\n")
        text.append(f"{utt} {TEXTS[i % len(TEXTS)]}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    write_features(d / "wav.scp", d / "feats", feats_type="raw")
    os.replace(d / "feats.num_frames", d / "utt2num_frames")
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    raw_dump(root, "train", 8)
    raw_dump(root, "valid", 2)
    (root / "arch.yaml").write_text(yaml.safe_dump(ARCH))
    return root


def body_state(model):
    return {k: v.clone() for k, v in model.wav2vec2.state_dict().items()}


def test_pretraining_resumes_bit_for_bit_and_saves_what_fine_tuning_loads(corpus, tmp_path):
    hf, scale = arch_from_training_config(corpus / "arch.yaml")
    straight = Pretrainer(hf, corpus / "train", tmp_path / "a", OPTS, scale)
    init = body_state(straight.model)
    straight.run()
    assert any(not torch.equal(init[k], v) for k, v in body_state(straight.model).items())

    interrupted = Pretrainer(hf, corpus / "train", tmp_path / "b", OPTS, scale)
    order = interrupted.batch_order()
    for _, utts in order[:2]:
        interrupted.update(utts)
    interrupted.save_state()  # as the loop does every save_every updates; then the process dies
    resumed = Pretrainer(hf, corpus / "train", tmp_path / "b", OPTS, scale)
    resumed.run()
    assert resumed.step == 4
    for k, v in body_state(straight.model).items():
        assert torch.equal(v, body_state(resumed.model)[k]), k

    conf = read_pretrained_config(tmp_path / "a" / "hf")
    assert conf["mask_time_prob"] == 0.0  # the architecture's masking, not the pre-training's 0.5
    enc = Wav2Vec2EEEncoder(exit_layers=[2, 4], hf_config=conf, branch_init_scale=0.0)
    enc.load_pretrained(tmp_path / "a" / "hf")
    for k, v in straight.model.wav2vec2.state_dict().items():
        if k != "masked_spec_embed":
            assert torch.equal(enc.model.state_dict()[k], v), k


def test_pretrain_then_fine_tune_from_the_command_line(corpus, tmp_path):
    out = tmp_path / "pre"
    proc = run_py("ee_asr.bin.pretrain_wav2vec2", "--arch-config", str(corpus / "arch.yaml"), "--train-dir",
                  str(corpus / "train"), "--out-dir", str(out), "--max-updates", "3", "--batch-bins", "40000",
                  "--codevectors-per-group", "8", "--codevector-dim", "16", "--num-negatives", "4",
                  "--log-interval", "1", "--save-every", "2")
    log = (out / "pretrain.log").read_text()
    assert "update 3/3" in log and "updates/s eta" in log and "contrastive=" in log
    assert (out / "hf" / "config.json").is_file() and (out / "pretrain_state.pth").is_file()
    again = run_py(*proc.args[2:]).stderr
    assert "resumed from" in again and "at update 3" in again

    from ee_asr.data.tokenizer import train_sentencepiece

    (tmp_path / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(tmp_path / "text.txt", tmp_path / "bpe", vocab_size=20, model_type="char")
    fine = {k: v for k, v in ARCH.items() if k != "encoder_conf"}
    fine["encoder_conf"] = {"exit_layers": [2, 4], "freeze_feature_encoder": True}
    (tmp_path / "fine.yaml").write_text(yaml.safe_dump(fine))
    exp = tmp_path / "exp"
    run_py("ee_asr.bin.train", "--config", str(tmp_path / "fine.yaml"), "--train-dir", str(corpus / "train"),
           "--valid-dir", str(corpus / "valid"), "--bpemodel", str(tmp_path / "bpe.model"), "--exp-dir", str(exp),
           "--pretrained", str(out / "hf"))
    assert "encoder initialised from" in (exp / "train.rank0.log").read_text()
    assert yaml.safe_load((exp / "config.yaml").read_text())["encoder_conf"]["hf_config"]["hidden_size"] == 32


def test_random_initialisation_is_saved_without_training(corpus, tmp_path):
    out = pretrain(corpus / "arch.yaml", corpus / "train", tmp_path, {**OPTS, "max_updates": 0})
    assert (out / "config.json").is_file() and not (tmp_path / "pretrain_state.pth").exists()


def test_bad_input_is_refused_by_name(corpus, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        arch_from_training_config(tmp_path / "none.yaml")
    (tmp_path / "conformer.yaml").write_text("encoder: conformer_ee\n")
    with pytest.raises(UserError, match="not a wav2vec2_ee training config"):
        arch_from_training_config(tmp_path / "conformer.yaml")
    (tmp_path / "fbank").mkdir()
    d = corpus / "train"
    write_features(d / "wav.scp", tmp_path / "fbank" / "feats")
    os.replace(tmp_path / "fbank" / "feats.num_frames", tmp_path / "fbank" / "utt2num_frames")
    (tmp_path / "fbank" / "text").write_text((d / "text").read_text())
    hf, scale = arch_from_training_config(corpus / "arch.yaml")
    with pytest.raises(UserError, match="raw waveform"):
        Pretrainer(hf, tmp_path / "fbank", tmp_path / "o", OPTS, scale)
    pretrain(corpus / "arch.yaml", corpus / "train", tmp_path / "x", OPTS)
    with pytest.raises(UserError, match="other options"):
        pretrain(corpus / "arch.yaml", corpus / "train", tmp_path / "x", {**OPTS, "lr": 0.01, "max_updates": 6})
    proc = run_py("ee_asr.bin.pretrain_wav2vec2", "--arch-config", "a", "--train-dir", "b", "--out-dir",
                  str(tmp_path / "y"), "--max-updates", "3", "--mask-prob", "1.5", check=False)
    assert proc.returncode == 2 and "--mask-prob must be in (0, 1]" in proc.stderr
