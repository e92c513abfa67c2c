"""Optimizer and learning-rate schedule choices."""

import pytest
import torch

from ee_asr.common.errors import UserError
from ee_asr.train.optim import build_optimizer, build_scheduler


def lrs(scheduler, optimizer, n):
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def make(conf, lr=0.01, planned_updates=None):
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer({"optim": "adamw", "optim_conf": {"lr": lr}}, params)
    return opt, build_scheduler({"scheduler": "piecewise_linear", "scheduler_conf": conf}, opt, planned_updates)


def test_piecewise_linear_warms_up_decays_and_holds_the_floor():
    opt, sched = make({"steps": [0, 10, 30], "scales": [0.0, 1.0, 0.1]})
    seen = lrs(sched, opt, 40)
    assert seen[9] == pytest.approx(0.01)                    # update 10 is the peak
    assert all(a < b for a, b in zip(seen[:9], seen[1:10]))  # rising
    assert all(a > b for a, b in zip(seen[10:29], seen[11:30]))  # falling
    assert seen[19] == pytest.approx(0.01 * (1 - 0.9 * 10 / 20))
    # past the last point the floor holds: more epochs on resume do not bring the lr back up
    assert seen[29:] == pytest.approx([0.001] * 11)


def test_piecewise_linear_resumes_where_it_stopped():
    opt, sched = make({"steps": [0, 10, 30], "scales": [0.0, 1.0, 0.0]})
    first = lrs(sched, opt, 15)
    state_opt, state_sched = opt.state_dict(), sched.state_dict()
    opt2, sched2 = make({"steps": [0, 10, 30], "scales": [0.0, 1.0, 0.0]})
    opt2.load_state_dict(state_opt)
    sched2.load_state_dict(state_sched)
    rest = lrs(sched2, opt2, 5)
    opt3, sched3 = make({"steps": [0, 10, 30], "scales": [0.0, 1.0, 0.0]})
    assert first + rest == pytest.approx(lrs(sched3, opt3, 20))


@pytest.mark.parametrize("conf, word", [({"steps": [0, 10], "scales": [0.0]}, "same length"),
                                        ({"steps": [5, 10], "scales": [0.0, 1.0]}, "start at 0"),
                                        ({"steps": [0, 10, 10], "scales": [0.0, 1.0, 0.5]}, "increase"),
                                        ({"steps": [0, 10], "scales": [0.0, -1.0]}, "negative"),
                                        ({"steps": [0, "end"], "scales": [0.0, 1.0]}, "neither"),
                                        ({"steps": [0, "last"], "scales": [0.0, 1.0]}, "number of updates")])
def test_piecewise_linear_bad_points_are_named(conf, word):
    with pytest.raises(UserError, match=word):
        make(conf)


def test_piecewise_linear_last_step_is_the_runs_last_update():
    opt, sched = make({"steps": [0, 10, "last"], "scales": [0.0, 1.0, 0.1]}, planned_updates=30)
    assert sched.steps == [0, 10, 30]
    assert lrs(sched, opt, 31)[-1] == pytest.approx(0.001)
    _, longer = make({"steps": [0, 10, "last"], "scales": [0.0, 1.0, 0.1]}, planned_updates=50)
    assert longer.steps == [0, 10, 50]
    _, short = make({"steps": [0, 500, "last"], "scales": [0.0, 1.0, 0.1]}, planned_updates=14)
    assert short.steps == [0, 7, 14]  # a run shorter than the warm-up: the warm-up shrinks to fit


def test_adamw_is_fused_unless_the_config_says_otherwise():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer({"optim": "adamw", "optim_conf": {"lr": 0.1}}, params).defaults["fused"]
    looped = build_optimizer({"optim": "adamw", "optim_conf": {"lr": 0.1, "foreach": False}}, params)
    assert not looped.defaults["fused"] and looped.defaults["foreach"] is False
    # the fused and looped updates agree
    grads = [torch.randn(3) for _ in range(5)]
    results = []
    for conf in ({"lr": 0.1}, {"lr": 0.1, "foreach": False}):
        p = torch.nn.Parameter(torch.ones(3))
        opt = build_optimizer({"optim": "adamw", "optim_conf": conf}, iter([p]))
        for g in grads:
            p.grad = g.clone()
            opt.step()
        results.append(p.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-6)
    assert not torch.allclose(results[0], torch.ones(3))
