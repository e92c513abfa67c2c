import pytest
import torch

from ee_asr.common.errors import UserError
from ee_asr.models.registry import build_model

TINY = {"encoder": "conformer_ee", "model": "ctc_ee", "input_size": 80, "vocab_size": 20, "normalize": None,
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 6,
                         "exit_layers": [2, 4, 6], "cnn_module_kernel": 7, "dropout_rate": 0.0}}


def tiny_model(**model_conf):
    torch.manual_seed(0)
    return build_model({**TINY, "model_conf": model_conf})


def batch(b=3, t=60):
    x = torch.randn(b, t, 80)
    xl = torch.tensor([t, t - 10, t - 25][:b])
    y = torch.randint(1, 19, (b, 4))
    yl = torch.tensor([4, 3, 2][:b])
    return x, xl, y, yl


def count_layer_calls(model):
    calls = []
    for i, layer in enumerate(model.encoder.encoders):
        layer.register_forward_hook(lambda *_, i=i: calls.append(i))
    return calls


def test_forward_returns_every_exit_and_per_exit_losses():
    model = tiny_model()
    loss, stats = model(*batch())
    assert set(stats) == {"loss", "loss_exit2", "loss_exit4", "loss_exit6"}
    assert torch.isclose(loss, stats["loss_exit2"] + stats["loss_exit4"] + stats["loss_exit6"])
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_asking_for_exits_up_to_k_computes_exactly_k_layers():
    model = tiny_model().eval()
    calls = count_layer_calls(model)
    x, xl, _, _ = batch()
    exits, _ = model.exit_log_probs(x, xl, max_layers=4)
    assert [layer for layer, _ in exits] == [2, 4]
    assert calls == [0, 1, 2, 3]


def test_early_exit_output_matches_full_pass():
    model = tiny_model().eval()
    x, xl, _, _ = batch()
    full, olens = model.exit_log_probs(x, xl)
    part, _ = model.exit_log_probs(x, xl, max_layers=2)
    assert torch.allclose(full[0][1], part[0][1], atol=1e-6)
    assert olens.tolist() == [((n - 1) // 2 - 1) // 2 for n in xl.tolist()]  # conv2d: 4x subsampling


def test_zero_branch_init_starts_every_exit_from_the_same_hidden_state():
    def exit_outputs(scale):
        torch.manual_seed(0)
        conf = {**TINY, "encoder_conf": {**TINY["encoder_conf"], "branch_init_scale": scale}}
        model = build_model({**conf, "model_conf": {}}).eval()
        x, xl, _, _ = batch()
        with torch.no_grad():
            outs, _ = model.encoder(x, xl)
        return [h for _, h in outs]

    # blocks whose residual branches add nothing are their final LayerNorm only: every exit
    # sees the front's output, normalised; espnet's default init gives each exit its own state
    zero = exit_outputs(0.0)
    assert all(torch.allclose(zero[0], h, atol=1e-4) for h in zero[1:])
    default = exit_outputs(1.0)
    assert not torch.allclose(default[0], default[-1], atol=1e-2)


def test_zero_branch_init_still_trains_every_parameter():
    torch.manual_seed(0)
    conf = {**TINY, "encoder_conf": {**TINY["encoder_conf"], "branch_init_scale": 0.0}}
    model = build_model({**conf, "model_conf": {}})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zeroed projections; then gradients reach what lies before them
        opt.zero_grad()
        model(*batch())[0].backward()
        opt.step()
    # key biases (softmax ignores them) and the depthwise conv bias (BatchNorm follows) get no
    # gradient under any init
    no_grad = [n for n, p in model.named_parameters() if not float(p.grad.abs().max()) > 0
               and not n.endswith(("linear_k.bias", "depthwise_conv.bias"))]
    assert no_grad == []


def test_stochastic_depth_skips_blocks_in_training_only():
    conf = {**TINY, "encoder_conf": {**TINY["encoder_conf"], "stochastic_depth_rate": [0.0, 0.0, 0.5, 0.5, 0.5, 0.5]}}
    torch.manual_seed(0)
    model = build_model({**conf, "model_conf": {}})
    x, xl, _, _ = batch()

    def last_exit(seed):
        torch.manual_seed(seed)
        with torch.no_grad():
            return model.encoder(x, xl)[0][-1][1]

    # dropout is 0, so only skipped blocks can make two passes differ
    assert not torch.allclose(last_exit(1), last_exit(2))
    model.eval()
    assert torch.equal(last_exit(1), last_exit(2))
    for bad in ([0.1, 0.2], "0.1", 1.0):
        with pytest.raises(UserError, match="stochastic_depth_rate"):
            build_model({**TINY, "encoder_conf": {**TINY["encoder_conf"], "stochastic_depth_rate": bad},
                         "model_conf": {}})


def test_shared_head_has_one_ctc_layer():
    assert len(tiny_model(shared_head=True).ctc_heads) == 1
    assert len(tiny_model().ctc_heads) == 3


@pytest.mark.parametrize("weighting", ["increasing", [0.5, 1.0, 2.0], "learned"])
def test_exit_weighting(weighting):
    model = tiny_model(exit_weighting=weighting)
    loss, stats = model(*batch())
    per_exit = torch.stack([stats[f"loss_exit{k}"] for k in (2, 4, 6)])
    if weighting == "increasing":
        assert torch.isclose(loss, (per_exit * torch.tensor([0.5, 1.0, 1.5])).sum())
    elif weighting == "learned":
        assert torch.isclose(loss, per_exit.sum())  # log-variances start at 0
        loss.backward()
        assert model.weighting.log_vars.grad is not None
    else:
        assert torch.isclose(loss, (per_exit * torch.tensor(weighting)).sum())


def test_bad_choices_and_keys_fail_naming_them():
    with pytest.raises(UserError, match="encoder_conf: unknown key 'num_blokcs'"):
        build_model({**TINY, "encoder_conf": {"num_blokcs": 3}})
    with pytest.raises(UserError, match="encoder: unknown choice 'conformr'"):
        build_model({**TINY, "encoder": "conformr"})
    with pytest.raises(UserError, match="exit_layers"):
        build_model({**TINY, "encoder_conf": {**TINY["encoder_conf"], "exit_layers": [2, 9]}})
    with pytest.raises(UserError, match="exit_weighting"):
        tiny_model(exit_weighting=[1.0, 2.0])


def test_normalisation_leaves_the_callers_features_alone(tmp_path):
    import numpy as np

    stats = tmp_path / "cmvn.npz"
    np.savez(stats, count=np.array(10), sum=np.full(80, 5.0), sum_square=np.full(80, 30.0))
    model = build_model({**TINY, "normalize": "global_mvn", "normalize_conf": {"stats_file": str(stats)}}).eval()
    x, xl, _, _ = batch()
    before = x.clone()
    first, _ = model.exit_log_probs(x, xl)
    second, _ = model.exit_log_probs(x, xl)
    assert torch.equal(x, before)
    assert torch.allclose(first[-1][1], second[-1][1])


@pytest.mark.parametrize("input_layer,factor", [("conv2d", 4), ("conv2d6", 6), ("conv2d8", 8)])
def test_narrow_subsampling_fronts_keep_lengths_and_ignore_padding(input_layer, factor):
    torch.manual_seed(0)
    conf = {**TINY["encoder_conf"], "input_layer": input_layer, "subsampling_channels": 8}
    model = build_model({**TINY, "encoder_conf": conf, "model_conf": {}}).eval()
    x, xl, _, _ = batch(t=90)
    full, olens = model.exit_log_probs(x, xl)
    assert all(abs(int(o) - int(n) / factor) <= 2 for o, n in zip(olens, xl))
    for i, n in enumerate(xl.tolist()):
        alone, olen = model.exit_log_probs(x[i:i + 1, :n], xl[i:i + 1])
        assert int(olen) == int(olens[i]) and alone[-1][1].size(1) == int(olen)
        assert torch.allclose(alone[-1][1][0], full[-1][1][i, :int(olen)], atol=1e-5)
