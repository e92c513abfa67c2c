"""The batched per-exit CTC losses equal the per-exit loop's, losses and gradients."""

import pytest
import torch

from ee_asr.models.registry import build_model
from test_architectures import AED
from test_model import TINY, batch


def losses_and_grads(model, stacked, inputs):
    model.stack_exits = stacked
    model.zero_grad()
    torch.manual_seed(1)
    loss, stats = model(*inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {k: v for k, v in stats.items() if k.startswith(("loss", "ctc"))}, grads


@pytest.mark.parametrize("config,model_conf", [(TINY, {}), (TINY, {"shared_head": True}),
                                               (TINY, {"exit_weighting": "learned"}), (AED, {})])
def test_stacked_exits_give_the_loops_losses_and_gradients(config, model_conf):
    torch.manual_seed(0)
    model = build_model({**config, "model_conf": {**config.get("model_conf", {}), **model_conf}}).train()
    inputs = batch()
    loop_loss, loop_stats, loop_grads = losses_and_grads(model, False, inputs)
    loss, stats, grads = losses_and_grads(model, True, inputs)
    assert torch.allclose(loss, loop_loss, rtol=1e-5)
    assert stats.keys() == loop_stats.keys() and len(stats) > 3
    for k in stats:
        assert torch.allclose(stats[k], loop_stats[k], rtol=1e-5), k
    assert grads.keys() == loop_grads.keys()
    for n in grads:
        assert torch.allclose(grads[n], loop_grads[n], rtol=1e-4, atol=1e-6), n


def test_an_utterance_too_short_for_its_tokens_is_zeroed_in_both():
    torch.manual_seed(0)
    model = build_model({**TINY, "model_conf": {}}).train()
    x, xl, y, yl = batch()
    y = torch.randint(1, 19, (3, 30))
    yl = torch.tensor([30, 3, 2])  # 30 tokens cannot fit the first utterance's 14 frames
    a = losses_and_grads(model, False, (x, xl, y, yl))
    b = losses_and_grads(model, True, (x, xl, y, yl))
    assert torch.isfinite(b[0]) and torch.allclose(a[0], b[0], rtol=1e-5)
