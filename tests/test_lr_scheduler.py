"""Learning-rate schedules against PyTorch's: the same lr (and, for OneCycleLR, momentum)
sequence, step for step, plus state_dict round trips and argument checks."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import wally
from wally.optim import SGD, Adam, Optimizer, RMSprop, lr_scheduler


def make_optimizer(lib, kind="sgd", groups=1):
    """An optimiser over one or two fresh parameter groups with different learning rates."""
    params = [lib.tensor(np.ones(2, np.float32), requires_grad=True) for _ in range(groups)]
    spec = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)]
    if kind == "sgd":
        return lib.optim.SGD(spec, lr=0.1, momentum=0.9)
    if kind == "adam":
        return lib.optim.Adam(spec, lr=0.1)
    return lib.optim.RMSprop(spec, lr=0.1)


def trace(optimizer, scheduler, steps):
    """[(last_lr, group lrs, group momenta/beta1)] at creation and after every step."""

    def snapshot():
        momenta = [g.get("momentum", g.get("betas", (None,))[0])
                   for g in optimizer.param_groups]
        return (list(scheduler.get_last_lr()), [g["lr"] for g in optimizer.param_groups],
                momenta)

    out = [snapshot()]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        out.append(snapshot())
    return out


def assert_same_trace(ours, theirs):
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            # Both sides evaluate the same Python float expressions: equal to the last bit.
            assert x == pytest.approx(y, rel=1e-15, abs=1e-18), f"step {step}: {a} != {b}"


def compare(torch, make, steps, kind="sgd", groups=2):
    our_opt, their_opt = make_optimizer(wally, kind, groups), make_optimizer(torch, kind, groups)
    ours = trace(our_opt, make(lr_scheduler, our_opt), steps)
    theirs = trace(their_opt, make(torch.optim.lr_scheduler, their_opt), steps)
    assert_same_trace(ours, theirs)
    lrs = [lr for lrs, _, _ in ours for lr in lrs]
    assert len(set(lrs)) > 2, "the schedule never changed the learning rate"
    return ours


SCHEDULES = {
    "step": (lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), 20),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[9, 2, 5, 5], gamma=0.3), 12),
    "exponential": (lambda m, o: m.ExponentialLR(o, gamma=0.9), 15),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=10), 35),
    "cosine-eta_min": (lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01), 30),
    "linear-warmup": (lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=4), 10),
    "linear-decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                             total_iters=6), 10),
    "lambda": (lambda m, o: m.LambdaLR(o, lambda epoch: 0.95 ** epoch), 12),
    "lambda-per-group": (lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1),
                                                     lambda e: 0.5 ** (e // 2)]), 12),
    "warmup-then-cosine": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5),
            m.CosineAnnealingLR(o, T_max=15, eta_min=1e-4)], milestones=[5]), 25),
    "three-stages": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=3), m.StepLR(o, step_size=2),
            m.ExponentialLR(o, gamma=0.8)], milestones=[3, 8]), 14),
    "onecycle-cos": (lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=30), 30),
    "onecycle-linear": (lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=20,
                                                  anneal_strategy="linear"), 20),
    "onecycle-three-phase": (lambda m, o: m.OneCycleLR(o, max_lr=0.8, epochs=4,
                                                       steps_per_epoch=6, pct_start=0.25,
                                                       three_phase=True), 24),
    "onecycle-no-momentum": (lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, total_steps=15, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0), 15),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(torch, name):
    make, steps = SCHEDULES[name]
    compare(torch, make, steps)


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_onecycle_cycles_beta1_or_momentum_like_torch(torch, kind):
    trace_ = compare(torch, lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=12,
                                                      base_momentum=0.8, max_momentum=0.9),
                     12, kind=kind)
    momenta = [m[0] for _, _, m in trace_]
    assert momenta[0] == pytest.approx(0.9) and 0.8 <= min(momenta) < 0.801


def test_warmup_then_cosine_shape():
    opt = SGD([wally.tensor([1.0], requires_grad=True)], lr=1.0)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    sched = lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[5])
    lrs = [sched.get_last_lr()[0]]
    for _ in range(15):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs[:6], [0.1, 0.28, 0.46, 0.64, 0.82, 1.0])
    np.testing.assert_allclose(lrs[5:], [0.5 * (1 + math.cos(math.pi * t / 10))
                                         for t in range(11)], atol=1e-12)


def test_two_schedulers_on_one_optimizer_compose_like_torch(torch):
    def make(m, o):
        first = m.StepLR(o, step_size=2, gamma=0.5)
        second = m.ExponentialLR(o, gamma=0.9)

        class Both:
            def step(self):
                first.step()
                second.step()

            def get_last_lr(self):
                return second.get_last_lr()

        return Both()

    compare(torch, make, 10)


def test_deprecated_step_with_epoch_uses_closed_form_like_torch(torch):
    results = []
    for lib, mod in ((wally, lr_scheduler), (torch, torch.optim.lr_scheduler)):
        opt = make_optimizer(lib)
        sched = mod.StepLR(opt, step_size=3, gamma=0.5)
        opt.step()
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(7)
        results.append(sched.get_last_lr())
    assert results[0] == results[1] == [pytest.approx(0.1 * 0.25)]


def test_onecycle_stepping_past_total_steps_raises_like_torch(torch):
    for lib, mod in ((wally, lr_scheduler), (torch, torch.optim.lr_scheduler)):
        opt = make_optimizer(lib)
        sched = mod.OneCycleLR(opt, max_lr=1.0, total_steps=4)
        for _ in range(4):
            opt.step()
            sched.step()
        with pytest.raises(ValueError, match=r"(?i)tried to step 5 times"):
            sched.step()


def test_initial_lr_and_base_lrs():
    opt = make_optimizer(wally, groups=2)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    assert sched.base_lrs == [0.1, 0.2] and sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]
    opt.step()
    sched.step()
    assert sched.get_last_lr() == [0.05, 0.1] and sched.last_epoch == 1
    last = sched.get_last_lr()
    last[0] = 99.0  # get_last_lr() returns a copy
    assert sched.get_last_lr()[0] == 0.05


# ----- state_dict -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["step", "multistep", "cosine", "lambda", "warmup-then-cosine",
                                  "three-stages", "onecycle-cos", "onecycle-three-phase"])
def test_state_dict_round_trip_mid_schedule(name):
    make, steps = SCHEDULES[name]
    split = steps // 3
    opt = make_optimizer(wally, "adam", groups=2)
    sched = make(lr_scheduler, opt)
    full = trace(opt, sched, steps)

    opt = make_optimizer(wally, "adam", groups=2)
    sched = make(lr_scheduler, opt)
    trace(opt, sched, split)
    text = json.dumps({"scheduler": sched.state_dict(), "optimizer": opt.state_dict()})

    saved = json.loads(text)
    opt2 = make_optimizer(wally, "adam", groups=2)
    sched2 = make(lr_scheduler, opt2)  # created first, as PyTorch advises, then loaded
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    resumed = trace(opt2, sched2, steps - split)
    assert_same_trace(resumed, full[split:])


def test_state_dict_is_a_copy():
    opt = make_optimizer(wally)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[1, 2])
    saved = sched.state_dict()
    opt.step()
    sched.step()
    assert saved["last_epoch"] == 0 and saved["milestones"] == [1, 2]
    assert "optimizer" not in saved


def test_load_state_dict_checks_group_count():
    sched = lr_scheduler.StepLR(make_optimizer(wally, groups=1), step_size=2)
    saved = lr_scheduler.StepLR(make_optimizer(wally, groups=2), step_size=2).state_dict()
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: base_lrs has 2 entries, but "
                                         r"the optimizer has 1 parameter groups"):
        sched.load_state_dict(saved)


def test_lambda_state_dict_keeps_callable_objects_state_only():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = make_optimizer(wally, groups=2)
    sched = lr_scheduler.LambdaLR(opt, [Decay(0.5), lambda e: 1.0])
    saved = json.loads(json.dumps(sched.state_dict()))
    assert saved["lr_lambdas"] == [{"rate": 0.5}, None]
    other = lr_scheduler.LambdaLR(make_optimizer(wally, groups=2), [Decay(0.9), lambda e: 1.0])
    other.load_state_dict(saved)
    assert other.lr_lambdas[0].rate == 0.5


# ----- argument checks --------------------------------------------------------------------------
class _NoMomentum(Optimizer):
    def __init__(self, params):
        super().__init__(params, {"lr": 0.1})


@pytest.mark.parametrize("make, error, match", [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError,
     r"StepLR: step_size must be a positive integer, got 0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError,
     r"CosineAnnealingLR: T_max must be a positive integer, got 0"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError,
     r"LinearLR: start_factor must be in \(0, 1\], got 0"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=1.5), ValueError, r"start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=2.0), ValueError,
     r"LinearLR: end_factor must be in \[0, 1\], got 2.0"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=0), ValueError, r"LinearLR: total_iters"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0] * 3), ValueError,
     r"LambdaLR: lr_lambda has 3 values, but the optimizer has 1 parameter groups"),
    (lambda o: lr_scheduler.LambdaLR(o, 0.5), TypeError, r"LambdaLR: lr_lambda must be callable"),
    (lambda o: lr_scheduler.StepLR("sgd", step_size=2), TypeError,
     r"StepLR: expected a wally.optim.Optimizer, got str"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2, last_epoch=3), KeyError,
     r"param_groups\[0\] has no 'initial_lr'"),
    (lambda o: lr_scheduler.SequentialLR(o, [], milestones=[]), ValueError,
     r"SequentialLR: expected at least one scheduler"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], milestones=[3]),
     ValueError, r"SequentialLR: expected 0 milestones for 1 schedulers, got 1"),
    (lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(make_optimizer(wally), 2)],
        milestones=[3]), ValueError, r"schedulers\[1\] \(StepLR\) steps a different optimizer"),
    (lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.StepLR(o, 2)] * 3, milestones=[5, 3]), ValueError,
     r"milestones must be increasing"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0), ValueError,
     r"OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=-5), ValueError,
     r"OneCycleLR: total_steps must be a positive integer, got -5"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=0), ValueError,
     r"steps_per_epoch must be a positive integer"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
     ValueError, r"OneCycleLR: pct_start must be a number in \[0, 1\], got 1.5"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, r"anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=10), ValueError,
     r"OneCycleLR: max_lr has 2 values, but the optimizer has 1 parameter groups"),
    (lambda o: lr_scheduler.OneCycleLR(_NoMomentum([wally.tensor([1.0], requires_grad=True)]),
                                       max_lr=1.0, total_steps=10), ValueError,
     r"cycle_momentum=True needs an optimizer with momentum or betas, and _NoMomentum"),
])
def test_bad_arguments_are_reported(make, error, match):
    with pytest.raises(error, match=match):
        make(make_optimizer(wally, groups=1))


def test_onecycle_without_momentum_cycling_works_on_any_optimizer():
    opt = _NoMomentum([wally.tensor([1.0], requires_grad=True)])
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)
    assert sched.get_last_lr() == [pytest.approx(0.04)]


def test_schedulers_work_with_every_optimizer():
    for cls in (SGD, Adam, RMSprop):
        opt = cls([wally.tensor([1.0], requires_grad=True)], lr=0.5)
        sched = lr_scheduler.CosineAnnealingLR(opt, T_max=4)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(4):
                opt.step()
                sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
