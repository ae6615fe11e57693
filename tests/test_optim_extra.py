"""Adagrad, NAdam and RAdam against their PyTorch twins: the same parameters and gradients
for 50 steps in float32 and float64 over every option, parameters skipped on steps without a
grad, state_dict keys and values as PyTorch names them, a round trip through JSON halfway,
loading PyTorch's own state dict, defaults, and bad hyper-parameters."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import wally
from wally.optim import Adagrad, NAdam, RAdam

SHAPES = [(3, 4), (5,), ()]
STEPS = 50


def make_params(torch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [wally.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def set_grads(torch, ours, theirs, rng, step):
    """grad = noise + param, so each trajectory feeds back into its own gradients; parameter
    1 gets no grad on steps 2 and 5 (both optimisers must leave it and its state alone)."""
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if i == 1 and step in (2, 5):
            p.grad, q.grad = None, None
            continue
        noise = rng.standard_normal(p.shape).astype(p.dtype)
        p.grad = wally.tensor(noise + p.array)
        q.grad = torch.tensor(noise + q.detach().numpy())


def assert_same(ours, theirs, dtype, step):
    rtol, atol = (2e-5, 2e-6) if dtype == np.float32 else (1e-12, 1e-13)
    for i, (p, q) in enumerate(zip(ours, theirs)):
        assert p.array.dtype == dtype
        np.testing.assert_allclose(p.array, q.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"parameter {i} after step {step}")


def run(torch, our_opt, their_opt, ours, theirs, dtype, steps, seed, start=0):
    rng = np.random.default_rng(seed)
    for step in range(start, start + steps):
        set_grads(torch, ours, theirs, rng, step)
        our_opt.step()
        their_opt.step()
        assert_same(ours, theirs, dtype, step)


def assert_state_like_torch(our_opt, their_opt):
    ours, theirs = our_opt.state_dict(), their_opt.state_dict()
    assert list(ours["state"]) == list(theirs["state"])
    for index, state in theirs["state"].items():
        assert list(ours["state"][index]) == list(state)
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(ours["state"][index][key]),
                                       value.numpy(), rtol=2e-5, atol=1e-7, err_msg=key)
    for group, their_group in zip(ours["param_groups"], theirs["param_groups"]):
        for key, value in group.items():
            assert their_group[key] == value, key


GRID = {
    "Adagrad": [
        {}, {"lr": 0.1, "lr_decay": 0.01}, {"weight_decay": 0.1, "eps": 1e-6},
        {"initial_accumulator_value": 0.5, "maximize": True},
        {"lr": 0.05, "lr_decay": 0.1, "weight_decay": 0.05, "initial_accumulator_value": 0.1},
    ],
    "NAdam": [
        {}, {"lr": 0.01, "betas": (0.8, 0.99)}, {"weight_decay": 0.1},
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01},
        {"betas": (0.3, 0.9), "eps": 1e-4, "maximize": True},  # lerp's weight >= 0.5 form
    ],
    "RAdam": [
        {}, {"lr": 0.01, "betas": (0.8, 0.9)},  # rho_t > 5 from step 6 on (beta2 = 0.9)
        {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"betas": (0.3, 0.5), "eps": 1e-4, "maximize": True},  # rho_t never exceeds 5
    ],
}
CASES = [(name, options) for name, grid in GRID.items() for options in grid]
CLASSES = {"Adagrad": Adagrad, "NAdam": NAdam, "RAdam": RAdam}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", CASES)
def test_matches_torch_for_50_steps(torch, name, options, dtype):
    ours, theirs = make_params(torch, dtype)
    our_opt = CLASSES[name](ours, **options)
    their_opt = getattr(torch.optim, name)(theirs, **options)
    before = [p.array.copy() for p in ours]
    run(torch, our_opt, their_opt, ours, theirs, dtype, STEPS, seed=1)
    assert all(not np.array_equal(p.array, b) for p, b in zip(ours, before))
    assert_state_like_torch(our_opt, their_opt)
    assert our_opt.state[ours[1]]["step"] == STEPS - 2  # skipped twice


@pytest.mark.parametrize("name, options", [CASES[4], CASES[8], CASES[11]])
def test_state_dict_round_trip_through_json_halfway(torch, name, options):
    ours, theirs = make_params(torch, np.float32)
    our_opt = CLASSES[name](ours, **options)
    their_opt = getattr(torch.optim, name)(theirs, **options)
    run(torch, our_opt, their_opt, ours, theirs, np.float32, 25, seed=2)
    saved = our_opt.state_dict()
    arrays = {f"{i}.{k}": v for i, s in saved["state"].items() for k, v in s.items()
              if isinstance(v, np.ndarray)}
    plain = json.loads(json.dumps({
        "state": {i: {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                  for i, s in saved["state"].items()},
        "param_groups": saved["param_groups"]}))
    for key, array in arrays.items():
        i, k = key.split(".")
        plain["state"][i][k] = array
    restored = CLASSES[name]([wally.tensor(p.array.copy(), requires_grad=True) for p in ours],
                             lr=123.0)
    restored.load_state_dict(plain)
    fresh = restored.param_groups[0]["params"]
    run(torch, restored, their_opt, fresh, theirs, np.float32, 25, seed=3, start=25)


@pytest.mark.parametrize("name, options", [CASES[4], CASES[8], CASES[11]])
def test_loads_torch_state_dict(torch, name, options):
    ours, theirs = make_params(torch, np.float64)
    their_opt = getattr(torch.optim, name)(theirs, **options)
    warm = [wally.tensor(q.detach().numpy().copy(), requires_grad=True) for q in theirs]
    run(torch, CLASSES[name](warm, **options), their_opt, warm, theirs, np.float64, 10, seed=4)
    state = their_opt.state_dict()
    converted = {
        "state": {i: {k: v.numpy() for k, v in s.items()} for i, s in state["state"].items()},
        "param_groups": [{k: v for k, v in g.items() if k not in (
            "foreach", "capturable", "differentiable", "fused")} for g in state["param_groups"]],
    }
    ours = [wally.tensor(q.detach().numpy().copy(), requires_grad=True) for q in theirs]
    our_opt = CLASSES[name](ours)
    our_opt.load_state_dict(converted)
    assert isinstance(our_opt.state[ours[0]]["step"], int)
    run(torch, our_opt, their_opt, ours, theirs, np.float64, 10, seed=5, start=10)


def test_adagrad_has_state_from_construction_as_torch(torch):
    ours, theirs = make_params(torch, np.float32)
    our_opt, their_opt = Adagrad(ours, initial_accumulator_value=0.25), torch.optim.Adagrad(
        theirs, initial_accumulator_value=0.25)
    assert_state_like_torch(our_opt, their_opt)


@pytest.mark.parametrize("name", ["Adagrad", "NAdam", "RAdam"])
def test_defaults_and_signature_match_torch(torch, name):
    ours, theirs = make_params(torch, np.float32)
    their_cls = getattr(torch.optim, name)
    ours_defaults, their_defaults = CLASSES[name](ours).defaults, their_cls(theirs).defaults
    for key, value in ours_defaults.items():
        assert their_defaults[key] == value, key
    torch_only = {"foreach", "capturable", "differentiable", "fused"}
    theirs_sig = [(p.name, p.default) for p in inspect.signature(their_cls).parameters.values()
                  if p.name not in torch_only]
    ours_sig = [(p.name, p.default) for p in inspect.signature(CLASSES[name]).parameters.values()]
    assert ours_sig == theirs_sig


def test_nadam_mu_product_and_radam_rectification_by_hand():
    p = wally.tensor([1.0], dtype=wally.float64, requires_grad=True)
    opt = NAdam([p], lr=0.1, betas=(0.9, 0.999), momentum_decay=0.004)
    p.grad = wally.tensor([1.0], dtype=wally.float64)
    opt.step()
    mu1 = 0.9 * (1 - 0.5 * 0.96 ** 0.004)
    mu2 = 0.9 * (1 - 0.5 * 0.96 ** 0.008)
    assert opt.state[p]["mu_product"] == pytest.approx(mu1, rel=1e-7)
    denom = (0.001 / 0.001) ** 0.5 + 1e-8
    expected = 1 - 0.1 * (1 - mu1) / (1 - mu1) / denom - 0.1 * mu2 / (1 - mu1 * mu2) * 0.1 / denom
    assert float(p.array[0]) == pytest.approx(expected, rel=1e-7)

    q = wally.tensor([1.0], dtype=wally.float64, requires_grad=True)
    opt = RAdam([q], lr=0.1, betas=(0.5, 0.9))
    for _ in range(5):  # rho_t <= 5 for t < 6 with beta2 = 0.9: plain momentum steps
        q.grad = wally.tensor([1.0], dtype=wally.float64)
        before = float(q.array[0])
        opt.step()
        assert float(q.array[0]) == pytest.approx(before - 0.1, rel=1e-12)


@pytest.mark.parametrize("make, pattern", [
    (lambda ps: Adagrad(ps, lr=-1.0), r"Adagrad: invalid lr=-1.0 \(expected lr >= 0\)"),
    (lambda ps: Adagrad(ps, lr_decay=-0.1), r"Adagrad: invalid lr_decay=-0.1"),
    (lambda ps: Adagrad(ps, initial_accumulator_value=-1),
     r"Adagrad: invalid initial_accumulator_value=-1.0 \(expected initial_accumulator_value"),
    (lambda ps: NAdam(ps, betas=(1.0, 0.9)),
     r"NAdam: invalid betas\[0\]=1.0 \(expected 0 <= betas\[0\] < 1\)"),
    (lambda ps: NAdam(ps, momentum_decay=-1.0), r"NAdam: invalid momentum_decay=-1.0"),
    (lambda ps: RAdam(ps, eps=-1.0), r"RAdam: invalid eps=-1.0 \(expected >= 0\)"),
    (lambda ps: RAdam(ps, weight_decay=-1.0), r"RAdam: invalid weight_decay=-1.0"),
])
def test_bad_hyper_parameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make([wally.zeros(2, requires_grad=True)])
    with pytest.raises(TypeError, match="must be a number"):
        Adagrad([wally.zeros(2, requires_grad=True)], lr="0.1")
