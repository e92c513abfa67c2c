"""The stacked CTC losses of all exits (the GPU path, forced here on the CPU) equal espnet's
CTC module per exit: losses and gradients."""

import pytest
import torch
from test_architectures import AED
from test_model import TINY, batch

from ee_asr.models.registry import build_model


def losses_and_grads(model, inputs, stacked=False):
    model.stack_exits = stacked  # True: the GPU path, forced on the CPU
    model.zero_grad()
    torch.manual_seed(1)
    loss, stats = model(*inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {k: v for k, v in stats.items() if k.startswith(("loss_exit", "ctc_exit"))}, grads


def assert_same(a, b):
    (loss_a, stats_a, grads_a), (loss_b, stats_b, grads_b) = a, b
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert stats_a.keys() == stats_b.keys() and len(stats_a) >= 3
    for k in stats_a:
        assert torch.allclose(stats_a[k], stats_b[k], rtol=1e-5), k
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        assert torch.allclose(grads_a[n], grads_b[n], rtol=1e-4, atol=1e-5), n


CASES = [(TINY, {}), (TINY, {"shared_head": True}), (TINY, {"exit_weighting": "learned"}),
         (AED, {}), (AED, {"shared_head": True})]


@pytest.mark.parametrize("config,model_conf", CASES)
def test_stacked_exits_give_espnets_losses_and_gradients(config, model_conf):
    torch.manual_seed(0)
    model = build_model({**config, "model_conf": {**config.get("model_conf", {}), **model_conf}}).train()
    inputs = batch()
    assert_same(losses_and_grads(model, inputs, stacked=True), losses_and_grads(model, inputs))


def test_an_utterance_too_short_for_its_tokens_is_zeroed_in_both():
    torch.manual_seed(0)
    model = build_model({**TINY, "model_conf": {}}).train()
    x, xl, _, _ = batch()
    y = torch.randint(1, 19, (3, 30))
    yl = torch.tensor([30, 3, 2])  # 30 tokens cannot fit the first utterance's 14 frames
    espnet = losses_and_grads(model, (x, xl, y, yl))
    assert torch.isfinite(espnet[0])
    assert_same(losses_and_grads(model, (x, xl, y, yl), stacked=True), espnet)
