"""The early-exit AED and Wav2Vec2-CTC models: forward, backward, per-exit decoding, fine-tuning."""

import json

import pytest
import torch
from test_model import TINY, batch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from conftest import decode_online
from ee_asr.common.errors import UserError
from ee_asr.decode.joint_beam import JointBeamSearch
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.models.registry import build_model
from ee_asr.models.wav2vec2_ee import lengths_for_feature_encoder, read_pretrained_config
from ee_asr.train.config import apply_sets, load_config, parse_set

VOCAB = 20
AED = {**TINY, "model": "aed_ee", "vocab_size": VOCAB,
       "model_conf": {"decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1}}}
HF_TINY = {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64,
           "conv_dim": [16, 16, 16], "conv_stride": [5, 4, 4], "conv_kernel": [10, 4, 4],
           "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "feat_extract_norm": "layer",
           "mask_time_prob": 0.0}
W2V = {"encoder": "wav2vec2_ee", "model": "ctc_ee", "input_size": 1, "vocab_size": VOCAB,
       "normalize": "utterance_mvn", "normalize_conf": {"norm_vars": True},
       "encoder_conf": {"hf_config": HF_TINY, "exit_layers": [2, 4]}, "model_conf": {}}


def build(config, **model_conf):
    torch.manual_seed(0)
    return build_model({**config, "model_conf": {**config["model_conf"], **model_conf}})


def test_aed_loss_is_the_weighted_sum_of_ctc_and_attention_over_exits():
    model = build(AED)
    loss, stats = model(*batch())
    joint = [0.3 * stats[f"ctc_exit{L}"] + 0.7 * stats[f"att_exit{L}"] for L in (2, 4, 6)]
    for L, j in zip((2, 4, 6), joint):
        assert torch.isclose(stats[f"loss_exit{L}"], j)
    assert torch.isclose(loss, sum(joint))
    loss.backward()
    assert all(p.grad is not None for p in model.decoders.parameters())
    assert len(model.decoders) == 3 and len(build(AED, shared_decoder=True).decoders) == 1


def test_aed_joint_beam_search_decodes_every_exit_and_gives_an_nbest_posterior():
    model = build(AED).eval()
    x, xl, _, _ = batch()
    engine = torch_engine(model, nbest_size=3, search=JointBeamSearch(model, beam_size=3, ctc_weight=0.3))
    for layer, e in engine.decode_every_exit((x, xl))[0].items():
        assert 0.0 < e["scores"]["nbest_posterior"] <= 1.0
    every = engine.decode_every_exit((x, xl))
    ids = [[r[layer]["ids"] for r in every] for layer in engine.exit_layers]
    assert all(0 < t < VOCAB - 1 for per_exit in ids for seq in per_exit for t in seq)
    # the beam's best equals what the search returns without the N-best
    alone = engine.decode_every_exit((x, xl), fields=())
    assert [[r[layer]["ids"] for r in alone] for layer in engine.exit_layers] == ids
    res = decode_online(model, x, xl, "nbest", 2.0, engine=engine)  # posterior < 2: nobody stops early
    assert [r["exit"] for r in res] == [6, 6, 6]


def test_joint_beam_without_pre_beam_lets_ctc_score_every_token():
    model = build(AED).eval()
    x, xl, _, _ = batch()
    outs, olens = model.exit_hidden(x, xl)
    full, pruned = JointBeamSearch(model, beam_size=3, pre_beam_ratio=0), JointBeamSearch(model, beam_size=3)
    assert not any(s.do_pre_beam for s in full.searches) and all(s.do_pre_beam for s in pruned.searches)
    ids, _ = full(0, outs[0][1], olens)
    assert len(ids) == 3 and all(0 < t < VOCAB - 1 for seq in ids for t in seq)
    with pytest.raises(UserError, match="pre_beam_ratio"):
        JointBeamSearch(model, beam_size=3, pre_beam_ratio=0.5)


def test_joint_beam_needs_a_model_with_decoders():
    with pytest.raises(UserError, match="needs a model with decoders"):
        JointBeamSearch(build({**TINY, "vocab_size": VOCAB, "model_conf": {}}), beam_size=3)


def wave_batch():
    torch.manual_seed(1)
    return torch.randn(3, 8000, 1), torch.tensor([8000, 6000, 3000]), torch.randint(1, 18, (3, 4)), \
        torch.tensor([4, 3, 2])


def test_wav2vec2_forward_backward_and_frozen_feature_encoder():
    model = build(W2V)
    loss, stats = model(*wave_batch())
    assert set(stats) == {"loss", "loss_exit2", "loss_exit4"}
    loss.backward()
    enc = model.encoder.model
    assert all(p.grad is None for p in enc.feature_extractor.parameters())
    assert all(p.grad is not None for p in enc.encoder.layers.parameters())
    unfrozen = build({**W2V, "encoder_conf": {**W2V["encoder_conf"], "freeze_feature_encoder": False}})
    unfrozen(*wave_batch())[0].backward()
    assert all(p.grad is not None for p in unfrozen.encoder.model.feature_extractor.parameters())


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_wav2vec2_batch_decodes_like_single_utterances_and_stops_computing(norm):
    """Also with wav2vec2-base's group norm, whose statistics over time must not see the padding."""
    conf = {**W2V["encoder_conf"], "hf_config": {**HF_TINY, "feat_extract_norm": norm}}
    model = build({**W2V, "encoder_conf": conf}).eval()
    x, xl, _, _ = wave_batch()
    assert len(set(xl.tolist())) == 3, "the batch needs padding for this test to mean anything"
    full, olens = model.exit_log_probs(x, xl)
    for i in range(3):
        one, _ = model.exit_log_probs(x[i:i + 1, : xl[i]], xl[i:i + 1])
        for (_, lp_one), (_, lp_full) in zip(one, full):
            assert torch.allclose(lp_one[0], lp_full[i, : olens[i]], atol=1e-4)
    calls = []
    for i, layer in enumerate(model.encoder.model.encoder.layers):
        layer.register_forward_hook(lambda *_, i=i: calls.append(i))
    res = decode_online(model, x, xl, "fixed", 2)
    assert [r["exit"] for r in res] == [2, 2, 2] and sorted(set(calls)) == [0, 1]


def test_transformers_own_forward_sees_no_padding_within_lengths_for_feature_encoder():
    """Pre-training runs transformers' Wav2Vec2ForPreTraining, which calls the feature encoder itself."""
    torch.manual_seed(0)
    hf = Wav2Vec2Model(Wav2Vec2Config(**{**HF_TINY, "feat_extract_norm": "group"})).eval()
    x, xl, _, _ = wave_batch()
    wave = x.squeeze(-1)
    olens = hf._get_feat_extract_output_lengths(xl)
    with lengths_for_feature_encoder(hf.feature_extractor, xl):
        batched = hf(wave).extract_features
    unmasked = hf(wave).extract_features
    for i in range(3):
        one = hf(wave[i:i + 1, : xl[i]]).extract_features[0]
        assert torch.allclose(one, batched[i, : olens[i]], atol=1e-5)
    assert not torch.allclose(hf(wave[2:3, : xl[2]]).extract_features[0], unmasked[2, : olens[2]], atol=1e-3)


def test_wav2vec2_rejects_fbank_input_and_unknown_hf_keys():
    with pytest.raises(UserError, match="raw waveform"):
        build({**W2V, "input_size": 80})
    with pytest.raises(UserError, match="unknown Wav2Vec2Config key 'hiden_size'"):
        build({**W2V, "encoder_conf": {"hf_config": {"hiden_size": 32}}})


def save_tiny_pretrained(path):
    torch.manual_seed(3)
    hf = Wav2Vec2Model(Wav2Vec2Config(**HF_TINY))
    hf.save_pretrained(path)
    return hf


def test_fine_tuning_loads_a_saved_hugging_face_checkpoint(tmp_path):
    hf = save_tiny_pretrained(tmp_path / "w2v")
    conf = read_pretrained_config(tmp_path / "w2v")
    assert conf["hidden_size"] == 32 and "transformers_version" not in conf
    model = build({**W2V, "encoder_conf": {"hf_config": conf, "exit_layers": [2, 4]}})
    model.encoder.load_pretrained(tmp_path / "w2v")
    for name, p in hf.state_dict().items():
        assert torch.equal(model.encoder.model.state_dict()[name], p), name


def test_missing_or_malformed_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        read_pretrained_config(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        read_pretrained_config(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not a Wav2Vec2 config"):
        read_pretrained_config(bad)
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="'bert' model, not wav2vec2"):
        read_pretrained_config(bad)
    save_tiny_pretrained(tmp_path / "w2v")
    for f in (tmp_path / "w2v").glob("*.safetensors"):
        f.unlink()
    model = build(W2V)
    with pytest.raises(UserError, match="could not be loaded"):
        model.encoder.load_pretrained(tmp_path / "w2v")


def test_set_overrides_nested_keys_and_refuses_unknown_ones(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("encoder_conf: {num_blocks: 12}\n")
    config = apply_sets(load_config(cfg), parse_set(["encoder_conf.num_blocks=4", "encoder_conf.exit_layers=[4]",
                                                     "model_conf.exit_weighting=[0, 1]"]))
    assert config["encoder_conf"] == {"num_blocks": 4, "exit_layers": [4]}
    assert config["model_conf"]["exit_weighting"] == [0, 1]
    with pytest.raises(UserError, match="unknown key 'encoder_cnf'"):
        apply_sets(config, parse_set(["encoder_cnf.x=1"]))
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_set(["encoder_conf.num_blocks"])


def test_wav2vec2_zero_branch_init_starts_every_layer_as_the_identity_and_trains():
    stable = {**W2V, "encoder_conf": {**W2V["encoder_conf"], "hf_config": {**HF_TINY, "do_stable_layer_norm": True}}}
    conf = {**stable, "encoder_conf": {**stable["encoder_conf"], "branch_init_scale": 0.0}}
    model = build(conf).eval()
    x, xl, _, _ = wave_batch()
    with torch.no_grad():
        state = model.encoder.start(x, xl)
        after = model.encoder.advance(state, 4)
        default = build(stable).eval().encoder.advance(state, 4)
    # pre-norm layers whose attention and feed-forward add nothing leave the hidden state as it was
    assert torch.equal(state.x, after.x)
    assert not torch.allclose(state.x, default.x, atol=1e-3)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zeroed projections, the second reaches what feeds them
        opt.zero_grad()
        model(*wave_batch())[0].backward()
        opt.step()
    layer = model.encoder.model.encoder.layers[0]
    assert float(layer.attention.out_proj.weight.detach().abs().max()) > 0
    assert float(layer.attention.q_proj.weight.grad.abs().max()) > 0


def test_wav2vec2_zero_branch_init_does_not_touch_a_loaded_checkpoint(tmp_path):
    hf = save_tiny_pretrained(tmp_path / "w2v")
    conf = {**W2V, "encoder_conf": {"hf_config": read_pretrained_config(tmp_path / "w2v"), "exit_layers": [2, 4],
                                    "branch_init_scale": 0.0}}
    model = build(conf)
    model.encoder.load_pretrained(tmp_path / "w2v")
    name = "encoder.layers.0.feed_forward.output_dense.weight"
    assert torch.equal(model.encoder.model.state_dict()[name], hf.state_dict()[name])
    assert float(hf.state_dict()[name].abs().max()) > 0
