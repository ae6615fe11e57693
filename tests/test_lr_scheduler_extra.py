"""ConstantLR, PolynomialLR, CosineAnnealingWarmRestarts, ReduceLROnPlateau and ExponentialLR
against PyTorch: get_last_lr() equal (==, not approximately) for 100 steps on two parameter
groups, chained with a second scheduler, fractional step(epoch), state_dict keys and a round
trip halfway, and bad arguments."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import wally
from wally.optim import lr_scheduler as W

STEPS = 100


def optimizers(torch, lrs=(0.1, 0.03)):
    ours = wally.optim.SGD([{"params": [wally.zeros(1, requires_grad=True)], "lr": lr}
                            for lr in lrs], lr=lrs[0], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=lrs[0], momentum=0.9)
    return ours, theirs


def both(torch, make):
    our_opt, their_opt = optimizers(torch)
    return make(W, our_opt), make(torch.optim.lr_scheduler, their_opt)


SCHEDULES = {
    "constant": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=7),
    "constant-default": lambda m, o: m.ConstantLR(o),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=40, power=0.9),
    "polynomial-square": lambda m, o: m.PolynomialLR(o, total_iters=13, power=2.0),
    "polynomial-default": lambda m, o: m.PolynomialLR(o),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.97),
    "warm-restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7),
    "warm-restarts-mult": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                     eta_min=1e-3),
    "warm-restarts-mult3": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3),
}


def run(ours, theirs, steps, start=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(start, start + steps):
            assert ours.get_last_lr() == theirs.get_last_lr(), f"step {step}"
            ours.step()
            theirs.step()
    assert ours.get_last_lr() == theirs.get_last_lr()
    assert [g["lr"] for g in ours.optimizer.param_groups] == \
        [g["lr"] for g in theirs.optimizer.param_groups]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_sequence_equals_torch(torch, name):
    ours, theirs = both(torch, SCHEDULES[name])
    run(ours, theirs, STEPS)
    assert ours.last_epoch == theirs.last_epoch


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_keys_and_round_trip_halfway(torch, name):
    ours, theirs = both(torch, SCHEDULES[name])
    run(ours, theirs, 37)
    saved = json.loads(json.dumps(ours.state_dict()))
    their_keys = set(theirs.state_dict()) - {"_get_lr_called_within_step"}
    assert set(saved) == their_keys
    for key in their_keys:
        assert saved[key] == theirs.state_dict()[key] or (
            isinstance(saved[key], float) and math.isinf(saved[key])), key
    our_opt, _ = optimizers(torch)  # resume as in PyTorch: build, then load both states
    restored = SCHEDULES[name](W, our_opt)
    our_opt.load_state_dict(ours.optimizer.state_dict())
    restored.load_state_dict(saved)
    run(restored, theirs, STEPS - 37, start=37)


@pytest.mark.parametrize("first, second", [
    ("constant", "exponential"), ("polynomial", "constant"), ("exponential", "polynomial"),
])
def test_chained_with_another_scheduler_like_torch(torch, first, second):
    our_opt, their_opt = optimizers(torch)
    ours = [SCHEDULES[first](W, our_opt), SCHEDULES[second](W, our_opt)]
    theirs = [SCHEDULES[first](torch.optim.lr_scheduler, their_opt),
              SCHEDULES[second](torch.optim.lr_scheduler, their_opt)]
    for step in range(60):
        for o, t in zip(ours, theirs):
            o.step()
            t.step()
        assert [g["lr"] for g in our_opt.param_groups] == \
            [g["lr"] for g in their_opt.param_groups], f"step {step}"


@pytest.mark.parametrize("T_0, T_mult", [(5, 1), (3, 2), (2, 3)])  # noqa: N803 (torch's names)
def test_warm_restarts_fractional_epochs_like_torch(torch, T_0, T_mult):  # noqa: N803
    make = lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult,  # noqa: E731
                                                      eta_min=0.001)
    ours, theirs = both(torch, make)
    iters = 7
    for epoch in range(12):
        for i in range(iters):
            ours.step(epoch + i / iters)
            theirs.step(epoch + i / iters)
            assert ours.get_last_lr() == theirs.get_last_lr(), (epoch, i)
            assert (ours.T_cur, ours.T_i, ours.last_epoch) == (theirs.T_cur, theirs.T_i,
                                                               theirs.last_epoch)
    for jump in (26, 3.5, 40.25):  # interleaved: a jump, then plain steps from there
        ours.step(jump)
        theirs.step(jump)
        run(ours, theirs, 5)


def test_deprecated_step_epoch_closed_form_like_torch(torch):
    for name in ("constant", "polynomial", "exponential"):
        ours, theirs = both(torch, SCHEDULES[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in (3, 10, 0, 55):
                ours.step(epoch)
                theirs.step(epoch)
                np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(),
                                           rtol=1e-15)


# ----- ReduceLROnPlateau ---------------------------------------------------------------------
PLATEAU_OPTIONS = [
    {}, {"mode": "max", "factor": 0.5, "patience": 2},
    {"patience": 0, "threshold": 0.1, "threshold_mode": "abs"},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "cooldown": 3, "patience": 1},
    {"factor": 0.3, "patience": 3, "cooldown": 2, "min_lr": [0.01, 0.005]},
    {"factor": 0.5, "patience": 1, "min_lr": 0.02, "eps": 1e-3},
    {"patience": 4, "threshold": 0.0, "cooldown": 1},
]


def metric_sequence(seed, steps=STEPS):
    """Noisy, with plateaus and repeats (exact ties with the best so far)."""
    rng = np.random.default_rng(seed)
    values = []
    level = 1.0
    for step in range(steps):
        if step % 9 == 0:
            level *= rng.choice([0.7, 1.0, 1.3])
        values.append(round(level + rng.choice([0.0, 0.0, 0.01, -0.01, 0.05]), 4))
    return values


@pytest.mark.parametrize("options", PLATEAU_OPTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_reduce_on_plateau_equals_torch(torch, options, seed):
    make = lambda m, o: m.ReduceLROnPlateau(o, **options)  # noqa: E731
    ours, theirs = both(torch, make)
    metrics = metric_sequence(seed)
    for step, value in enumerate(metrics):
        metric = wally.tensor(value) if step % 2 else value  # a 0-d tensor works too
        ours.step(metric)
        theirs.step(value)
        assert ours.get_last_lr() == theirs.get_last_lr(), f"step {step}"
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter, theirs.last_epoch)
        if step == 50:
            saved = ours.state_dict()
            assert set(saved) == set(theirs.state_dict())
            assert {k: v for k, v in saved.items() if k != "min_lrs"} == {
                k: v for k, v in theirs.state_dict().items() if k != "min_lrs"}
            our_opt, _ = optimizers(torch)
            resumed = make(W, our_opt)
            our_opt.load_state_dict(ours.optimizer.state_dict())
            resumed.load_state_dict(saved)
            ours = resumed
    assert ours.get_last_lr() != [0.1, 0.03] or not options  # something was reduced


def test_reduce_on_plateau_by_hand():
    opt = wally.optim.SGD([wally.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = W.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1)
    lrs = []
    for metric in [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]:
        scheduler.step(metric)
        lrs.append(scheduler.get_last_lr()[0])
    # bad epochs 1, 2 -> reduce at the 3rd call; cooldown swallows the 4th; 5th is bad #1,
    # 6th improves; 7th bad #1, 8th bad #2 -> reduce
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]


# ----- bad arguments -------------------------------------------------------------------------
def sgd():
    return wally.optim.SGD([wally.zeros(1, requires_grad=True)], lr=0.1)


@pytest.mark.parametrize("make, error, match", [
    (lambda: W.ConstantLR(sgd(), factor=1.5), ValueError,
     r"ConstantLR: factor must be in \(0, 1\], got 1.5"),
    (lambda: W.ConstantLR(sgd(), total_iters=0), ValueError,
     r"ConstantLR: total_iters must be a positive integer, got 0"),
    (lambda: W.PolynomialLR(sgd(), total_iters=2.5), ValueError,
     r"PolynomialLR: total_iters must be a positive integer, got 2.5"),
    (lambda: W.PolynomialLR(sgd(), power="2"), TypeError,
     r"PolynomialLR: power must be a number, got '2'"),
    (lambda: W.CosineAnnealingWarmRestarts(sgd(), T_0=0), ValueError,
     r"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got 0"),
    (lambda: W.CosineAnnealingWarmRestarts(sgd(), T_0=3, T_mult=0), ValueError,
     r"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got 0"),
    (lambda: W.CosineAnnealingWarmRestarts(sgd(), T_0=3).step(-1), ValueError,
     r"CosineAnnealingWarmRestarts.step: epoch must be >= 0, got -1"),
    (lambda: W.ReduceLROnPlateau(sgd(), factor=1.0), ValueError,
     r"ReduceLROnPlateau: factor must be a number < 1.0, got 1.0"),
    (lambda: W.ReduceLROnPlateau(sgd(), mode="lowest"), ValueError,
     r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"),
    (lambda: W.ReduceLROnPlateau(sgd(), threshold_mode="pct"), ValueError,
     r"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'pct'"),
    (lambda: W.ReduceLROnPlateau(sgd(), min_lr=[0.1, 0.2]), ValueError,
     r"ReduceLROnPlateau: min_lr has 2 values, but the optimizer has 1 parameter groups"),
    (lambda: W.ReduceLROnPlateau(sgd(), patience=-1), ValueError,
     r"ReduceLROnPlateau: patience must be an integer >= 0, got -1"),
    (lambda: W.ReduceLROnPlateau("sgd"), TypeError,
     r"ReduceLROnPlateau: expected a wally.optim.Optimizer, got str"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()
