"""Layers against their PyTorch twins: the same weights (copied through ``load_state_dict``),
the same input, then outputs, input gradients, parameter gradients and buffers compared."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wally
from wally import nn
from wally.testing import assert_close

RNG = np.random.default_rng(1234)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def run_both(torch, ours, theirs, x, rtol=1e-5, atol=1e-6, grad=True):
    """Copy ``theirs``' state into ``ours``, run both on ``x`` and compare everything."""
    ours.load_state_dict(theirs.state_dict())
    xw = wally.tensor(x, requires_grad=grad)
    xt = torch.tensor(x, requires_grad=grad)
    yw, yt = ours(xw), theirs(xt)
    assert_close(yw, yt, rtol=rtol, atol=atol, msg="output")
    if grad:
        gy = randn(*yt.shape, dtype=x.dtype)
        yw.backward(wally.tensor(gy))
        yt.backward(torch.tensor(gy))
        assert_close(xw.grad, xt.grad, rtol=rtol, atol=atol, msg="input grad")
        theirs_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_close(p.grad, theirs_params[name].grad, rtol=rtol, atol=atol, msg=name)
    for name, buffer in theirs.state_dict().items():
        assert_close(ours.state_dict()[name], buffer, rtol=rtol, atol=atol, msg=name)
    return yw, yt


# ----- Linear -----------------------------------------------------------------------------------
class TestLinear:
    @pytest.mark.parametrize("bias", [True, False])
    @pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
    def test_matches_torch(self, torch, bias, shape):
        run_both(torch, nn.Linear(7, 4, bias=bias), torch.nn.Linear(7, 4, bias=bias),
                 randn(*shape))

    def test_float64(self, torch):
        ours = nn.Linear(3, 2, dtype=wally.float64)
        theirs = torch.nn.Linear(3, 2, dtype=torch.float64)
        assert ours.weight.dtype == np.float64
        run_both(torch, ours, theirs, randn(4, 3, dtype=np.float64), rtol=1e-12, atol=1e-12)

    def test_parameter_shapes_and_init_bounds(self):
        layer = nn.Linear(300, 400)
        assert layer.weight.shape == (400, 300) and layer.bias.shape == (400,)
        bound = 1 / math.sqrt(300)
        for p in (layer.weight, layer.bias):
            values = p.array
            assert values.dtype == np.float32
            assert np.abs(values).max() <= bound
        w = layer.weight.array
        # U(-b, b): max close to b, mean 0, std b/√3.
        assert np.abs(w).max() > 0.99 * bound
        assert abs(w.mean()) < 0.01 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound

    def test_reset_parameters_is_seeded(self):
        wally.manual_seed(7)
        a = nn.Linear(4, 3)
        wally.manual_seed(7)
        b = nn.Linear(4, 3)
        assert_close(a.weight, b.weight) and assert_close(a.bias, b.bias)
        c = nn.Linear(4, 3)
        assert not np.allclose(a.weight.array, c.weight.array)

    def test_wrong_input_names_layer_expected_and_actual(self):
        layer = nn.Linear(784, 10)
        with pytest.raises(ValueError) as info:
            layer(wally.zeros(8, 1, 28, 28))
        message = str(info.value)
        assert "Linear(in_features=784, out_features=10, bias=True)" in message
        assert "(*, 784)" in message and "(8, 1, 28, 28)" in message
        assert "Flatten" in message

    def test_wrong_dtype_names_layer_and_both_dtypes(self):
        with pytest.raises(TypeError, match=r"Linear\(in_features=3.*float32.*float64"):
            nn.Linear(3, 2)(wally.zeros(2, 3, dtype=wally.float64))

    def test_bad_sizes(self):
        with pytest.raises(ValueError, match="in_features"):
            nn.Linear(-1, 3)
        with pytest.raises(ValueError, match="out_features"):
            nn.Linear(3, 2.5)

    def test_lazy_linear_matches_torch_after_load(self, torch):
        theirs = torch.nn.Linear(6, 3)
        ours = nn.LazyLinear(3)
        ours(wally.zeros(1, 6))
        run_both(torch, ours, theirs, randn(4, 6))


class TestShapeLayers:
    def test_flatten_matches_torch(self, torch):
        x = randn(2, 3, 4, 5)
        for args in [(), (0,), (1, 2), (2, -1), (-3, -2)]:
            ours, theirs = nn.Flatten(*args), torch.nn.Flatten(*args)
            run_both(torch, ours, theirs, x)
            assert repr(ours) == repr(theirs)

    def test_unflatten_matches_torch(self, torch):
        x = randn(2, 12, 3)
        for dim, sizes in [(1, (3, 4)), (1, (-1, 2)), (-1, (3, 1)), (0, (1, 2))]:
            ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
            run_both(torch, ours, theirs, x)
            assert repr(ours) == repr(theirs)

    def test_unflatten_wrong_size_names_layer(self):
        with pytest.raises(ValueError, match=r"Unflatten\(dim=1.*size 12"):
            nn.Unflatten(1, (5, 5))(wally.zeros(2, 12))

    def test_identity_returns_its_input(self):
        x = wally.ones(3)
        assert nn.Identity(54, unused="argument")(x) is x


# ----- activations ------------------------------------------------------------------------------
ACTIVATIONS = [
    ("ReLU", (), {}),
    ("LeakyReLU", (0.2,), {}),
    ("Sigmoid", (), {}),
    ("Tanh", (), {}),
    ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}),
    ("Softplus", (), {"beta": 2.0, "threshold": 5.0}),
    ("Softmax", (), {"dim": 1}),
    ("Softmax", (), {"dim": -1}),
    ("LogSoftmax", (), {"dim": 1}),
]


class TestActivations:
    @pytest.mark.parametrize("name, args, kwargs", ACTIVATIONS)
    def test_matches_torch(self, torch, name, args, kwargs):
        ours = getattr(nn, name)(*args, **kwargs)
        theirs = getattr(torch.nn, name)(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        # float32: the two erf/tanh implementations round differently in the last bits.
        run_both(torch, ours, theirs, randn(4, 5, 3) * 3, rtol=1e-4, atol=1e-5)

    def test_float64_exact(self, torch):
        x = randn(6, 4, dtype=np.float64)
        for name, args, kwargs in ACTIVATIONS:
            run_both(torch, getattr(nn, name)(*args, **kwargs),
                     getattr(torch.nn, name)(*args, **kwargs), x, rtol=1e-10, atol=1e-12)

    def test_inplace_flag_is_accepted(self, torch):
        assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))
        assert repr(nn.LeakyReLU(0.1, True)) == repr(torch.nn.LeakyReLU(0.1, True))

    def test_gelu_rejects_unknown_approximation(self):
        with pytest.raises(ValueError, match="approximate"):
            nn.GELU("fast")


# ----- dropout ----------------------------------------------------------------------------------
class TestDropout:
    @pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
    def test_statistics_in_training(self, p):
        drop = nn.Dropout(p)
        x = wally.ones(200_000)
        y = drop(x).array
        dropped = (y == 0).mean()
        # Binomial: std of the fraction is √(p(1-p)/n) < 0.0012; allow 5 σ.
        assert abs(dropped - p) < 0.006
        np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
        assert abs(y.mean() - 1) < 0.02  # E[y] = x

    def test_gradient_uses_the_same_mask(self):
        drop = nn.Dropout(0.5)
        x = wally.ones(1000, requires_grad=True)
        y = drop(x)
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.array, y.array)

    def test_eval_is_identity_and_p_zero_too(self):
        x = wally.randn(50, 20)
        drop = nn.Dropout(0.9).eval()
        assert_close(drop(x), x)
        assert_close(nn.Dropout(0.0)(x), x)

    def test_p_one_zeroes_everything(self):
        assert not nn.Dropout(1.0)(wally.ones(10)).array.any()

    def test_seeded_masks_repeat(self):
        wally.manual_seed(3)
        a = nn.Dropout()(wally.ones(64)).array
        wally.manual_seed(3)
        b = nn.Dropout()(wally.ones(64)).array
        np.testing.assert_array_equal(a, b)

    def test_repr_and_validation(self, torch):
        assert repr(nn.Dropout(0.3)) == repr(torch.nn.Dropout(0.3))
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(1.5)

    def test_follows_model_mode(self):
        net = nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5))
        x = wally.randn(4, 10)
        net.eval()
        assert_close(net(x), net(x))
        net.train()
        assert (net(x).array == 0).any()


# ----- batch norm -------------------------------------------------------------------------------
BATCH_NORMS = [
    ("BatchNorm1d", (16, 5)),
    ("BatchNorm1d", (8, 5, 7)),
    ("BatchNorm2d", (6, 5, 4, 3)),
    ("BatchNorm3d", (4, 5, 2, 3, 3)),
]


class TestBatchNorm:
    @pytest.mark.parametrize("name, shape", BATCH_NORMS)
    def test_train_steps_then_eval_match_torch(self, torch, name, shape):
        ours, theirs = getattr(nn, name)(5), getattr(torch.nn, name)(5)
        with torch.no_grad():  # non-trivial affine parameters
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-0.5, 0.5)
        ours.load_state_dict(theirs.state_dict())
        for step in range(3):
            x = randn(*shape) * (step + 1) + step
            xw, xt = wally.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            yw, yt = ours(xw), theirs(xt)
            assert_close(yw, yt, rtol=1e-4, atol=1e-5, msg=f"train output, step {step}")
            gy = randn(*shape)
            yw.backward(wally.tensor(gy))
            yt.backward(torch.tensor(gy))
            assert_close(xw.grad, xt.grad, rtol=1e-4, atol=1e-4, msg="input grad")
            assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-4, atol=1e-4)
            assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-4, atol=1e-4)
            ours.zero_grad(), theirs.zero_grad()
        for key, value in theirs.state_dict().items():
            assert_close(ours.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
        assert int(ours.num_batches_tracked.item()) == 3
        ours.eval(), theirs.eval()
        x = randn(*shape)
        assert_close(ours(wally.tensor(x)), theirs(torch.tensor(x)), rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("options", [
        {"momentum": None}, {"momentum": 0.3}, {"affine": False},
        {"track_running_stats": False}, {"bias": False}, {"eps": 1e-2},
    ])
    def test_options_match_torch(self, torch, options):
        ours, theirs = nn.BatchNorm2d(3, **options), torch.nn.BatchNorm2d(3, **options)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for _ in range(3):
            run_both(torch, ours, theirs, randn(4, 3, 2, 2) + 1, rtol=1e-4, atol=1e-5)
        ours.eval(), theirs.eval()
        run_both(torch, ours, theirs, randn(4, 3, 2, 2), rtol=1e-4, atol=1e-5)

    def test_float64(self, torch):
        ours = nn.BatchNorm1d(4, dtype=wally.float64)
        theirs = torch.nn.BatchNorm1d(4, dtype=torch.float64)
        run_both(torch, ours, theirs, randn(10, 4, dtype=np.float64), rtol=1e-10, atol=1e-12)

    def test_buffers_and_initial_values(self):
        bn = nn.BatchNorm2d(3)
        assert [n for n, _ in bn.named_buffers()] == [
            "running_mean", "running_var", "num_batches_tracked"]
        assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
        assert bn.weight.array.tolist() == [1, 1, 1] and bn.bias.array.tolist() == [0, 0, 0]
        bn(wally.randn(4, 3, 2, 2))
        bn.reset_parameters()
        assert bn.running_var.array.tolist() == [1, 1, 1]
        assert int(bn.num_batches_tracked.item()) == 0

    def test_eval_does_not_update_running_stats(self):
        bn = nn.BatchNorm1d(3).eval()
        bn(wally.randn(8, 3) + 5)
        assert not bn.running_mean.array.any() and int(bn.num_batches_tracked.item()) == 0

    @pytest.mark.parametrize("name, shape", [
        ("BatchNorm1d", (2, 3, 4, 5)), ("BatchNorm2d", (2, 3)), ("BatchNorm3d", (2, 3, 4, 4)),
    ])
    def test_wrong_rank_names_layer_and_shape(self, name, shape):
        layer = getattr(nn, name)(3)
        with pytest.raises(ValueError) as info:
            layer(wally.zeros(*shape))
        message = str(info.value)
        assert message.startswith(f"{name}(3, eps=1e-05")
        assert str(shape) in message and "-D input" in message

    def test_wrong_channel_count_names_layer(self):
        expected = r"BatchNorm2d\(3.*expected 3 channels.*\(2, 4, 5, 5\)"
        with pytest.raises(ValueError, match=expected):
            nn.BatchNorm2d(3)(wally.zeros(2, 4, 5, 5))

    def test_lazy_matches_eager(self, torch):
        ours = nn.LazyBatchNorm2d()
        ours(wally.zeros(2, 4, 3, 3))
        ours.reset_parameters()
        run_both(torch, ours, torch.nn.BatchNorm2d(4), randn(3, 4, 2, 2), rtol=1e-4, atol=1e-5)


# ----- losses -----------------------------------------------------------------------------------
class TestLosses:
    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_cross_entropy_matches_torch(self, torch, reduction):
        logits, labels = randn(6, 4), RNG.integers(0, 4, 6)
        weight = np.array([1.0, 2.0, 0.5, 1.5], dtype=np.float32)
        ours = nn.CrossEntropyLoss(weight=wally.tensor(weight), reduction=reduction,
                                   label_smoothing=0.1, ignore_index=2)
        theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), reduction=reduction,
                                           label_smoothing=0.1, ignore_index=2)
        xw, xt = wally.tensor(logits, requires_grad=True), torch.tensor(logits,
                                                                         requires_grad=True)
        lw, lt = ours(xw, wally.tensor(labels)), theirs(xt, torch.tensor(labels))
        assert_close(lw, lt, rtol=1e-5, atol=1e-6)
        lw.sum().backward(), lt.sum().backward()
        assert_close(xw.grad, xt.grad, rtol=1e-5, atol=1e-6)
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]

    def test_other_losses_match_torch(self, torch):
        x, y = randn(5, 3), randn(5, 3)
        probs = 1 / (1 + np.exp(-x))
        labels = RNG.integers(0, 3, 5)
        targets01 = (y > 0).astype(np.float32)
        logp = x - np.log(np.exp(x).sum(1, keepdims=True))
        cases = [
            ("MSELoss", {}, x, y), ("L1Loss", {"reduction": "sum"}, x, y),
            ("NLLLoss", {}, logp, labels), ("BCELoss", {}, probs, targets01),
            ("BCEWithLogitsLoss", {}, x, targets01),
        ]
        for name, kwargs, inp, target in cases:
            lw = getattr(nn, name)(**kwargs)(wally.tensor(inp), wally.tensor(target))
            lt = getattr(torch.nn, name)(**kwargs)(torch.tensor(inp), torch.tensor(target))
            assert_close(lw, lt, rtol=1e-5, atol=1e-6, msg=name)

    def test_bce_with_logits_pos_weight_is_a_buffer(self, torch):
        pos = np.array([1.0, 2.0, 3.0], dtype=np.float32)
        ours = nn.BCEWithLogitsLoss(pos_weight=wally.tensor(pos))
        theirs = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos))
        assert list(ours.state_dict()) == list(theirs.state_dict())
        x, t = randn(4, 3), (randn(4, 3) > 0).astype(np.float32)
        assert_close(ours(wally.tensor(x), wally.tensor(t)), theirs(torch.tensor(x),
                                                                     torch.tensor(t)))

    def test_legacy_reduction_arguments(self):
        assert nn.MSELoss(size_average=False).reduction == "sum"
        assert nn.MSELoss(reduce=False).reduction == "none"
        assert nn.CrossEntropyLoss(None, True).reduction == "mean"

    def test_bad_reduction_names_loss(self):
        with pytest.raises(ValueError, match="CrossEntropyLoss: reduction"):
            nn.CrossEntropyLoss(reduction="avg")
