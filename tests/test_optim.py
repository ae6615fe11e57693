"""Optimisers against their PyTorch twins, step for step on the same gradients; parameter
groups, zero_grad, state_dict round trips, argument checks; and nn.utils' gradient clipping."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import wally
from wally import nn
from wally.optim import SGD, Adam, AdamW, Optimizer, RMSprop

SHAPES = [(3, 4), (5,), ()]
STEPS = 8


def randn(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def make_params(torch, seed=0, shapes=SHAPES):
    """The same float32 leaves in wally and in torch."""
    rng = np.random.default_rng(seed)
    arrays = [randn(rng, s) for s in shapes]
    ours = [wally.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def set_grads(torch, ours, theirs, rng, skip=()):
    """grad = noise + param (so each trajectory feeds back into its own grads); parameters
    whose index is in ``skip`` get no grad this step."""
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if i in skip:
            p.grad, q.grad = None, None
            continue
        noise = randn(rng, p.shape)
        p.grad = wally.tensor(noise + p.array)
        q.grad = torch.tensor(noise + q.detach().numpy())


def assert_same(ours, theirs, rtol=1e-5, atol=1e-6):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        assert p.array.dtype == np.float32
        np.testing.assert_allclose(p.array, q.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"parameter {i}")


def run_both(torch, ours, theirs, our_opt, their_opt, steps=STEPS, seed=1):
    """Step both optimisers on the same gradients; parameter 1 has no grad at steps 2 and 5,
    so it must be skipped (no state change) by both. Compare after every step."""
    rng = np.random.default_rng(seed)
    start = [p.array.copy() for p in ours]
    storage = [p.array for p in ours]
    for step in range(steps):
        set_grads(torch, ours, theirs, rng, skip=(1,) if step in (2, 5) else ())
        our_opt.step()
        their_opt.step()
        assert_same(ours, theirs)
    for p, array, before in zip(ours, storage, start):
        assert p.array is array, "the update must be written into the parameter's memory"
        assert not np.array_equal(p.array, before), "the parameter never moved"


# ----- update rules against torch ---------------------------------------------------------------
SGD_GRID = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
    for m, d, n, wd, mx in itertools.product([0, 0.9], [0, 0.3], [False, True], [0, 0.1],
                                             [False, True])
    if not n or (m > 0 and d == 0)
]


@pytest.mark.parametrize("options", SGD_GRID, ids=lambda o: "-".join(f"{k}={v}"
                                                                      for k, v in o.items()))
def test_sgd_matches_torch(torch, options):
    ours, theirs = make_params(torch)
    run_both(torch, ours, theirs, SGD(ours, lr=0.05, **options),
             torch.optim.SGD(theirs, lr=0.05, **options))


def test_sgd_first_momentum_buffer_is_the_gradient():
    p = wally.tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = wally.tensor([0.5, 1.0])
    opt.step()
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"], [0.5, 1.0])
    np.testing.assert_allclose(p.array, [0.95, -2.1], rtol=1e-6)
    p.grad = wally.tensor([1.0, 1.0])
    opt.step()  # b = 0.9 b + (1 - 0.5) g
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [0.95, 1.4], rtol=1e-6)


ADAM_GRID = list(itertools.product([Adam, AdamW], [False, True], [0, 0.1], [False, True],
                                   [(0.9, 0.999), (0.3, 0.8)]))


@pytest.mark.parametrize("cls, amsgrad, weight_decay, maximize, betas", ADAM_GRID)
def test_adam_matches_torch(torch, cls, amsgrad, weight_decay, maximize, betas):
    options = dict(lr=0.01, betas=betas, amsgrad=amsgrad, weight_decay=weight_decay,
                   maximize=maximize)
    ours, theirs = make_params(torch)
    their_cls = getattr(torch.optim, cls.__name__)
    run_both(torch, ours, theirs, cls(ours, **options), their_cls(theirs, **options))


def test_adamw_default_weight_decay_is_decoupled(torch):
    ours, theirs = make_params(torch)
    opt = AdamW(ours)
    assert opt.defaults["weight_decay"] == 1e-2
    run_both(torch, ours, theirs, opt, torch.optim.AdamW(theirs))
    # Adam with the same weight decay takes a different path: the decay is coupled.
    ours2, theirs2 = make_params(torch)
    coupled = Adam(ours2, weight_decay=1e-2)
    run_both(torch, ours2, theirs2, coupled, torch.optim.Adam(theirs2, weight_decay=1e-2))
    assert not np.allclose(ours[0].array, ours2[0].array, rtol=0, atol=1e-7)


RMSPROP_GRID = list(itertools.product([False, True], [0, 0.9], [0, 0.1], [False, True],
                                      [0.99, 0.5]))


@pytest.mark.parametrize("centered, momentum, weight_decay, maximize, alpha", RMSPROP_GRID)
def test_rmsprop_matches_torch(torch, centered, momentum, weight_decay, maximize, alpha):
    options = dict(lr=0.01, alpha=alpha, centered=centered, momentum=momentum,
                   weight_decay=weight_decay, maximize=maximize)
    ours, theirs = make_params(torch)
    run_both(torch, ours, theirs, RMSprop(ours, **options), torch.optim.RMSprop(theirs,
                                                                                **options))


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop])
def test_defaults_match_torch(torch, cls):
    ours, theirs = make_params(torch)
    ours_defaults = cls(ours).defaults
    their_defaults = getattr(torch.optim, cls.__name__)(theirs).defaults
    for key, value in ours_defaults.items():
        assert their_defaults[key] == value, key


@pytest.mark.parametrize("make", [
    lambda m, ps: m.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda m, ps: m.Adam(ps, lr=0.05),
    lambda m, ps: m.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
], ids=["sgd", "adam", "rmsprop"])
def test_training_a_linear_model_through_backward_matches_torch(torch, make):
    rng = np.random.default_rng(3)
    x, y = randn(rng, (16, 5)), randn(rng, (16, 2))
    ours, theirs = nn.Linear(5, 2), torch.nn.Linear(5, 2)
    ours.load_state_dict(theirs.state_dict())
    our_opt, their_opt = make(wally.optim, ours.parameters()), make(torch.optim,
                                                                    theirs.parameters())
    for _ in range(10):
        for model, opt, lib in ((ours, our_opt, wally), (theirs, their_opt, torch)):
            opt.zero_grad()
            loss = ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()
            loss.backward()
            opt.step()
    np.testing.assert_allclose(ours.weight.array, theirs.weight.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ours.bias.array, theirs.bias.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: Adam(ps, amsgrad=True),
    lambda ps: AdamW(ps),
    lambda ps: RMSprop(ps, momentum=0.9, centered=True, weight_decay=0.1),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_float32_stays_float32_and_float64_stays_float64(make):
    for dtype in (np.float32, np.float64):
        p = wally.tensor(np.ones((2, 3), dtype), requires_grad=True)
        opt = make([p])
        for _ in range(3):
            p.grad = wally.tensor(np.full((2, 3), 0.5, dtype))
            opt.step()
        assert p.array.dtype == dtype
        for name, value in opt.state[p].items():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype, name


# ----- parameter groups, zero_grad, step --------------------------------------------------------
@pytest.mark.parametrize("name, common, group_options", [
    ("SGD", dict(lr=0.1, momentum=0.9), [dict(lr=0.01, weight_decay=0.1), dict()]),
    ("Adam", dict(lr=0.01), [dict(weight_decay=0.2, amsgrad=True), dict(lr=0.1)]),
    ("RMSprop", dict(lr=0.01), [dict(centered=True), dict(lr=0.001, momentum=0.5)]),
])
def test_parameter_groups_match_torch(torch, name, common, group_options):
    ours, theirs = make_params(torch)
    our_groups = [{"params": ours[:2], **group_options[0]},
                  {"params": ours[2], **group_options[1]}]  # a bare tensor, as d2l writes
    their_groups = [{"params": theirs[:2], **group_options[0]},
                    {"params": [theirs[2]], **group_options[1]}]
    our_opt = getattr(wally.optim, name)(our_groups, **common)
    their_opt = getattr(torch.optim, name)(their_groups, **common)
    for ours_group, theirs_group in zip(our_opt.param_groups, their_opt.param_groups):
        for key, value in ours_group.items():
            if key != "params":
                assert theirs_group[key] == value, key
    run_both(torch, ours, theirs, our_opt, their_opt)


def test_groups_do_not_share_hyperparameters_and_the_user_dict_is_left_alone():
    a, b = (wally.tensor([1.0], requires_grad=True) for _ in range(2))
    group = {"params": [a], "lr": 0.5}
    opt = SGD([group, {"params": [b]}], lr=0.1)
    assert group == {"params": [a], "lr": 0.5}
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    a.grad, b.grad = wally.tensor([1.0]), wally.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.5, 0.9], rtol=1e-6)


def test_add_param_group_and_manual_lr_change():
    a, b = (wally.tensor([1.0], requires_grad=True) for _ in range(2))
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.2})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    opt.param_groups[0]["lr"] = 0.3  # what d2l's hand-written schedules do
    a.grad, b.grad = wally.tensor([1.0]), wally.tensor([1.0])
    opt.step()
    # Adam's first step moves by lr (m/sqrt(v) = 1 after bias correction), up to eps.
    np.testing.assert_allclose([a.item(), b.item()], [0.7, 0.8], rtol=1e-5)


def test_named_parameters_are_accepted_and_the_names_kept():
    layer = nn.Linear(3, 2)
    opt = SGD(layer.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    params = opt.param_groups[0]["params"]
    assert len(params) == 2 and params[0] is layer.weight and params[1] is layer.bias
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_zero_grad(torch):
    ours, theirs = make_params(torch)
    opt = SGD(ours, lr=0.1)
    for p in ours:
        p.grad = wally.tensor(np.ones(p.shape, np.float32))
    grad = ours[0].grad
    opt.zero_grad(set_to_none=False)
    assert ours[0].grad is grad and not np.any(grad.array)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)
    opt.step()  # no grads: nothing happens
    topt = torch.optim.SGD(theirs, lr=0.1)
    for q in theirs:
        q.grad = torch.ones_like(q)
    topt.zero_grad()
    assert all(q.grad is None for q in theirs)  # the same default as torch


def test_step_skips_params_without_grad_and_gives_them_no_state():
    a, b = (wally.tensor([1.0, 2.0], requires_grad=True) for _ in range(2))
    opt = Adam([a, b])
    a.grad = wally.tensor([1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(b.array, [1.0, 2.0])
    assert opt.state[a]["step"] == 1 and not opt.state.get(b)
    assert list(opt.state_dict()["state"]) == [0]


def test_step_with_closure_reevaluates_with_grad_on():
    w = wally.tensor([3.0], requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with wally.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(w.array, [1.5])


def test_grad_of_wrong_shape_is_reported():
    w = wally.tensor([1.0, 2.0], requires_grad=True)
    w.grad = wally.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"SGD\.step.*shape \(2,\).*\(3,\)"):
        SGD([w], lr=0.1).step()


def test_repr_lists_groups():
    w = wally.tensor([1.0], requires_grad=True)
    text = repr(SGD([w], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    momentum: 0.9" in text


# ----- state_dict ------------------------------------------------------------------------------
OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
]
OPT_IDS = ["sgd-nesterov", "sgd-plain", "adam-amsgrad", "adamw", "rmsprop"]


def to_json_and_arrays(state_dict):
    """Split a state dict the way a safetensors + JSON checkpoint would: arrays into a flat
    dict of named arrays, everything else through json.dumps/loads."""
    arrays, state = {}, {}
    for index, param_state in state_dict["state"].items():
        state[index] = {}
        for name, value in param_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.{index}.{name}"] = value.copy()
                state[index][name] = {"__array__": f"state.{index}.{name}"}
            else:
                state[index][name] = value
    text = json.dumps({"state": state, "param_groups": state_dict["param_groups"]})
    return text, arrays


def from_json_and_arrays(text, arrays):
    loaded = json.loads(text)
    for param_state in loaded["state"].values():
        for name, value in param_state.items():
            if isinstance(value, dict) and "__array__" in value:
                param_state[name] = arrays[value["__array__"]]
    return loaded  # note: state keys are now strings, betas a list


def assert_plain(value, where="state_dict"):
    """Only NumPy arrays and JSON-able Python values: nothing that needs pickle."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, (str, int)), f"{where}: key {k!r}"
            assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            assert_plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (bool, int, float, str, np.ndarray), (
            f"{where} is a {type(value).__name__}")


@pytest.mark.parametrize("name, options", OPTIMIZERS, ids=OPT_IDS)
def test_state_dict_round_trip_mid_training_continues_identically(torch, name, options):
    cls = getattr(wally.optim, name)
    rng = np.random.default_rng(5)
    params, _ = make_params(torch)
    opt = cls(params, **options)
    grads = [[randn(rng, s) for s in SHAPES] for _ in range(8)]
    for step_grads in grads[:4]:
        for p, g in zip(params, step_grads):
            p.grad = wally.tensor(g)
        opt.step()
    saved = opt.state_dict()
    assert_plain(saved)
    text, arrays = to_json_and_arrays(saved)

    clones = [wally.tensor(p.array.copy(), requires_grad=True) for p in params]
    other = cls(clones, lr=123.0)  # hyper-parameters must come from the state dict
    other.load_state_dict(from_json_and_arrays(text, arrays))
    assert other.param_groups[0]["lr"] == options["lr"]
    for step_grads in grads[4:]:
        for p, q, g in zip(params, clones, step_grads):
            p.grad, q.grad = wally.tensor(g), wally.tensor(g)
        opt.step()
        other.step()
    for p, q in zip(params, clones):
        np.testing.assert_array_equal(p.array, q.array)
    assert type(other.param_groups[0].get("betas", ())) is tuple


def test_state_dict_is_a_snapshot_and_loading_copies():
    w = wally.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = wally.tensor([1.0, 1.0])
    opt.step()
    saved = opt.state_dict()
    buffer = saved["state"][0]["momentum_buffer"].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], buffer)
    opt.load_state_dict(saved)
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], buffer)


@pytest.mark.parametrize("name, options", OPTIMIZERS, ids=OPT_IDS)
def test_state_dict_layout_and_values_match_torch(torch, name, options):
    ours, theirs = make_params(torch)
    our_opt = getattr(wally.optim, name)(ours, **options)
    their_opt = getattr(torch.optim, name)(theirs, **options)
    run_both(torch, ours, theirs, our_opt, their_opt, steps=3)
    our_sd, their_sd = our_opt.state_dict(), their_opt.state_dict()
    assert [g["params"] for g in our_sd["param_groups"]] == [
        g["params"] for g in their_sd["param_groups"]]
    assert set(our_sd["state"]) == {k for k, v in their_sd["state"].items() if v}
    for index, their_state in their_sd["state"].items():
        if not their_state:
            continue
        assert set(our_sd["state"][index]) == set(their_state), index
        for key, value in their_state.items():
            mine = our_sd["state"][index][key]
            expected = value.numpy() if torch.is_tensor(value) else value
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name, options", OPTIMIZERS, ids=OPT_IDS)
def test_loading_torch_state_dict_continues_like_torch(torch, name, options):
    ours, theirs = make_params(torch)
    their_opt = getattr(torch.optim, name)(theirs, **options)
    rng = np.random.default_rng(9)
    for _ in range(3):
        set_grads(torch, ours, theirs, rng)
        their_opt.step()
    for p, q in zip(ours, theirs):
        p.array[...] = q.detach().numpy()
    sd = their_opt.state_dict()
    converted = {
        "state": {k: {n: (v.numpy() if torch.is_tensor(v) else v) for n, v in s.items()}
                  for k, s in sd["state"].items()},
        "param_groups": [{k: v for k, v in g.items()
                          if k in ("params",) or k in getattr(wally.optim, name)(
                              [wally.tensor([0.0], requires_grad=True)]).defaults}
                         for g in sd["param_groups"]],
    }
    our_opt = getattr(wally.optim, name)(ours)
    our_opt.load_state_dict(converted)
    run_both(torch, ours, theirs, our_opt, their_opt, steps=4, seed=10)


class TestLoadStateDictErrors:
    def setup_method(self):
        self.a = wally.tensor(np.ones((2, 2), np.float32), requires_grad=True)
        self.b = wally.tensor(np.ones(3, np.float32), requires_grad=True)
        self.opt = Adam([self.a, self.b])
        self.a.grad = wally.tensor(np.ones((2, 2), np.float32))
        self.opt.step()
        self.saved = self.opt.state_dict()

    def test_group_count(self):
        other = Adam([{"params": [self.a]}, {"params": [self.b]}])
        with pytest.raises(ValueError, match=r"Adam\.load_state_dict: .*1 parameter groups.*2"):
            other.load_state_dict(self.saved)

    def test_param_count(self):
        with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict, 1"):
            Adam([self.a]).load_state_dict(self.saved)

    def test_state_shape(self):
        swapped = Adam([self.b, self.a])
        with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(2, 2\), "
                                             r"but the parameter has shape \(3,\)"):
            swapped.load_state_dict(self.saved)

    def test_unknown_parameter_index(self):
        self.saved["state"][7] = self.saved["state"].pop(0)
        with pytest.raises(ValueError, match="state for parameter 7"):
            self.opt.load_state_dict(self.saved)

    def test_not_a_state_dict(self):
        with pytest.raises(ValueError, match="'state' and 'param_groups'"):
            self.opt.load_state_dict({"state": {}})

    def test_bad_hyperparameter_in_the_file(self):
        self.saved["param_groups"][0]["betas"] = [0.9, 1.5]
        with pytest.raises(ValueError, match=r"Adam: invalid betas\[1\]=1.5"):
            self.opt.load_state_dict(self.saved)


# ----- argument checks --------------------------------------------------------------------------
def leaf():
    return wally.tensor([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("make, error, match", [
    (lambda: SGD([leaf()], lr=-0.1), ValueError, r"SGD: invalid learning rate lr=-0.1"),
    (lambda: SGD([leaf()], lr=0.1, momentum=-0.5), ValueError, r"SGD: invalid momentum=-0.5"),
    (lambda: SGD([leaf()], lr=0.1, weight_decay=-1), ValueError,
     r"SGD: invalid weight_decay=-1"),
    (lambda: SGD([leaf()], lr=0.1, nesterov=True), ValueError,
     r"SGD: nesterov=True needs momentum > 0 and dampening == 0, got momentum=0"),
    (lambda: SGD([leaf()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"SGD: nesterov.*dampening=0.1"),
    (lambda: SGD([leaf()], lr="0.1"), TypeError, r"SGD: lr must be a number, got '0.1'"),
    (lambda: SGD([{"params": [leaf()], "lr": -2.0}], lr=0.1), ValueError,
     r"SGD: invalid learning rate lr=-2.0"),
    (lambda: Adam([leaf()], lr=-1e-3), ValueError, r"Adam: invalid learning rate lr=-0.001"),
    (lambda: Adam([leaf()], betas=(1.0, 0.999)), ValueError,
     r"Adam: invalid betas\[0\]=1.0 \(expected 0 <= betas\[0\] < 1\)"),
    (lambda: Adam([leaf()], betas=(0.9, -0.1)), ValueError, r"Adam: invalid betas\[1\]=-0.1"),
    (lambda: Adam([leaf()], betas=0.9), TypeError, r"Adam: betas must be a pair"),
    (lambda: Adam([leaf()], eps=-1e-8), ValueError, r"Adam: invalid eps=-1e-08"),
    (lambda: Adam([leaf()], weight_decay=-0.1), ValueError, r"Adam: invalid weight_decay"),
    (lambda: AdamW([leaf()], lr=-1.0), ValueError, r"AdamW: invalid learning rate lr=-1.0"),
    (lambda: RMSprop([leaf()], alpha=1.5), ValueError, r"RMSprop: invalid alpha=1.5"),
    (lambda: RMSprop([leaf()], eps=-1.0), ValueError, r"RMSprop: invalid eps=-1.0"),
    (lambda: RMSprop([leaf()], momentum=-0.1), ValueError, r"RMSprop: invalid momentum=-0.1"),
    (lambda: RMSprop([leaf()], lr=-0.1), ValueError, r"RMSprop: invalid learning rate"),
    (lambda: SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    (lambda: SGD(leaf(), lr=0.1), TypeError, r"SGD: params should be an iterable.*\[tensor\]"),
    (lambda: SGD({leaf()}, lr=0.1), TypeError, r"not a set"),
    (lambda: SGD([[1.0, 2.0]], lr=0.1), TypeError, r"SGD: can only optimise Tensors.*list"),
    (lambda: SGD([leaf() * 2], lr=0.1), ValueError, r"SGD: can't optimise a non-leaf"),
    (lambda: SGD([{"lr": 0.1}]), ValueError, r"SGD.add_param_group: the group has no 'params'"),
])
def test_bad_arguments_are_reported(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_parameter_may_be_listed_once():
    w = leaf()
    with pytest.raises(ValueError, match="same parameter twice"):
        SGD([w, w], lr=0.1)
    opt = SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})


def test_a_generator_is_consumed_once():
    layer = nn.Linear(2, 2)
    params = layer.parameters()
    SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD(params, lr=0.1)


def test_base_optimizer_needs_an_update_rule():
    opt = Optimizer([leaf()], {"lr": 0.1})
    opt.param_groups[0]["params"][0].grad = wally.tensor([1.0, 1.0])
    with pytest.raises(NotImplementedError, match="Optimizer does not implement _update"):
        opt.step()


# ----- nn.utils: gradient clipping --------------------------------------------------------------
def grads_pair(torch, seed=0, scale=1.0, none_at=None):
    rng = np.random.default_rng(seed)
    ours, theirs = make_params(torch, seed, shapes=[(3, 4), (5,), (2, 2, 2)])
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if i == none_at:
            continue
        g = randn(rng, p.shape) * scale
        p.grad, q.grad = wally.tensor(g.copy()), torch.tensor(g.copy())
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, 0.5, math.inf, -math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("none_at", [None, 1])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm, none_at):
    ours, theirs = grads_pair(torch, none_at=none_at)
    norm_type = float(norm_type)
    before = [None if p.grad is None else p.grad.array.copy() for p in ours]
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, wally.Tensor) and total.shape == () and total.dtype == np.float32
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-5)
    for p, q, g in zip(ours, theirs, before):
        if q.grad is None:
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad.array, q.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert (max_norm > total.item()) == np.array_equal(p.grad.array, g)


def test_clip_grad_norm_single_tensor_and_in_place(torch):
    w = wally.tensor(np.zeros(4, np.float32), requires_grad=True)
    w.grad = wally.tensor(np.array([3.0, 4.0, 0.0, 0.0], np.float32))
    grad_array = w.grad.array
    total = nn.utils.clip_grad_norm_(w, 1.0)
    assert total.item() == 5.0 and w.grad.array is grad_array
    np.testing.assert_allclose(w.grad.array, [0.6, 0.8, 0, 0], rtol=1e-5)


def test_clip_grad_norm_without_grads_returns_zero():
    total = nn.utils.clip_grad_norm_([leaf(), leaf()], 1.0)
    assert total.item() == 0.0 and total.dtype == np.float32


def test_clip_grad_norm_nonfinite(torch):
    ours, theirs = grads_pair(torch)
    ours[0].grad.array[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite|nan.*error_if_nonfinite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    theirs[0].grad[0, 0] = float("nan")
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert math.isnan(total.item()) and math.isnan(expected.item())
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(p.grad.array), np.isnan(q.grad.numpy()))


def test_clip_grad_norm_rejects_negative_max_norm():
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be >= 0, got -1"):
        nn.utils.clip_grad_norm_([leaf()], -1)


def test_get_total_norm_and_clip_grads_with_norm_match_torch(torch):
    ours, theirs = grads_pair(torch, scale=3.0)
    total = nn.utils.get_total_norm([p.grad for p in ours])
    expected = torch.nn.utils.get_total_norm([q.grad for q in theirs])
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-6)
    nn.utils.clip_grads_with_norm_(ours, 2.0, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 2.0, expected)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.array, q.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("clip_value", [0.1, 0.7, 10.0])
def test_clip_grad_value_matches_torch(torch, clip_value):
    ours, theirs = grads_pair(torch, none_at=2)
    nn.utils.clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.array, q.grad.numpy())
    assert np.abs(ours[0].grad.array).max() <= clip_value
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0"):
        nn.utils.clip_grad_value_(ours, -1.0)


def test_parameters_to_vector_and_back(torch):
    ours, theirs = make_params(torch, shapes=[(2, 3), (4,)])
    vec = nn.utils.parameters_to_vector(ours)
    np.testing.assert_array_equal(vec.array,
                                  torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    vec.sum().backward()  # differentiable, like torch's
    assert all(np.array_equal(p.grad.array, np.ones(p.shape)) for p in ours)
    storage = ours[0].array
    nn.utils.vector_to_parameters(wally.arange(10, dtype=wally.float32), ours)
    assert ours[0].array is storage
    np.testing.assert_array_equal(ours[0].array, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(ours[1].array, [6, 7, 8, 9])
    with pytest.raises(ValueError, match="parameters hold 10 elements, but vec has 3"):
        nn.utils.vector_to_parameters(wally.zeros(3), ours)
    with pytest.raises(TypeError, match="expected vec to be a Tensor"):
        nn.utils.vector_to_parameters(np.zeros(10), ours)
