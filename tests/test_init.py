"""nn.init: gains and fans against PyTorch, sample statistics against the formulas (fixed seed,
large tensors, tolerances of several standard errors), and the in-place contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wally
from wally import nn
from wally.nn import init

# Weight shapes of a Linear layer and of 1-D/2-D/3-D convolutions.
SHAPES = [(300, 200), (64, 32, 5), (64, 16, 3, 3), (8, 4, 3, 3, 3)]
N = 200_000  # samples in the statistical checks: std of the sample std is about 0.16 %


def fans(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def assert_uniform(values, bound):
    values = np.asarray(values, dtype=np.float64).ravel()
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.99 * bound and values.max() > 0.99 * bound  # fills the interval
    se = bound / math.sqrt(3 * values.size)
    assert abs(values.mean()) < 5 * se
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def assert_normal(values, std, mean=0.0):
    values = np.asarray(values, dtype=np.float64).ravel()
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)
    assert values.std() == pytest.approx(std, rel=0.01)
    # A normal, not a uniform of the same std: about 4.55 % beyond 2σ.
    beyond = (np.abs(values - mean) > 2 * std).mean()
    assert 0.040 < beyond < 0.051


class TestGainAndFans:
    @pytest.mark.parametrize("nonlinearity, param", [
        ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
        ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None),
        ("conv_transpose2d", None),
    ])
    def test_gain_matches_torch(self, torch, nonlinearity, param):
        expected = torch.nn.init.calculate_gain(nonlinearity, param)
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-12)

    def test_gain_values(self):
        assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
        assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
        assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))

    def test_unknown_nonlinearity(self):
        with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
            init.calculate_gain("swish")
        with pytest.raises(ValueError, match="negative_slope"):
            init.calculate_gain("leaky_relu", "0.1")

    @pytest.mark.parametrize("shape", SHAPES)
    def test_fans_match_torch(self, torch, shape):
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init._calculate_fan_in_and_fan_out(wally.empty(shape)) == expected
        assert init._calculate_fan_in_and_fan_out(wally.empty(shape)) == fans(shape)

    def test_fans_need_two_dimensions(self):
        with pytest.raises(ValueError, match="fewer than 2 dimensions"):
            init.xavier_uniform_(wally.empty(5))
        with pytest.raises(ValueError, match="fan_avg"):
            init.kaiming_normal_(wally.empty(3, 3), mode="fan_avg")


class TestDistributions:
    def test_uniform(self):
        t = init.uniform_(wally.empty(N), -0.3, 0.3)
        assert_uniform(t.array, 0.3)
        t = init.uniform_(wally.empty(N), 2.0, 3.0)
        assert t.array.min() >= 2.0 and t.array.max() <= 3.0
        assert t.array.mean() == pytest.approx(2.5, abs=0.005)

    def test_normal(self):
        assert_normal(init.normal_(wally.empty(N), mean=1.5, std=0.02).array, 0.02, mean=1.5)

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("gain", [1.0, 2.0])
    def test_xavier_uniform(self, shape, gain):
        fan_in, fan_out = fans(shape)
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        samples = np.concatenate([init.xavier_uniform_(wally.empty(shape), gain).array.ravel()
                                  for _ in range(-(-N // math.prod(shape)))])
        assert_uniform(samples, bound)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_xavier_normal(self, shape):
        fan_in, fan_out = fans(shape)
        std = 0.5 * math.sqrt(2 / (fan_in + fan_out))
        samples = np.concatenate([init.xavier_normal_(wally.empty(shape), gain=0.5).array.ravel()
                                  for _ in range(-(-N // math.prod(shape)))])
        assert_normal(samples, std)

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
    @pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", 0.1),
                                                 ("leaky_relu", math.sqrt(5)), ("tanh", 0)])
    def test_kaiming_uniform(self, shape, mode, nonlinearity, a):
        fan = fans(shape)[0 if mode == "fan_in" else 1]
        bound = init.calculate_gain(nonlinearity, a) * math.sqrt(3 / fan)
        samples = np.concatenate([
            init.kaiming_uniform_(wally.empty(shape), a, mode, nonlinearity).array.ravel()
            for _ in range(-(-N // math.prod(shape)))])
        assert_uniform(samples, bound)

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
    def test_kaiming_normal(self, shape, mode):
        fan = fans(shape)[0 if mode == "fan_in" else 1]
        std = math.sqrt(2) / math.sqrt(fan)
        samples = np.concatenate([
            init.kaiming_normal_(wally.empty(shape), mode=mode, nonlinearity="relu").array.ravel()
            for _ in range(-(-N // math.prod(shape)))])
        assert_normal(samples, std)

    def test_kaiming_default_is_leaky_relu_with_zero_slope(self):
        t = init.kaiming_uniform_(wally.empty(400, 500))
        assert_uniform(t.array, math.sqrt(2) * math.sqrt(3 / 500))

    def test_kaiming_normal_std_matches_torch_samples(self, torch):
        shape = (128, 64, 3, 3)
        theirs = torch.nn.init.kaiming_normal_(torch.empty(shape), mode="fan_out").numpy()
        ours = init.kaiming_normal_(wally.empty(shape), mode="fan_out").array
        assert ours.std() == pytest.approx(theirs.std(), rel=0.02)

    @pytest.mark.parametrize("mean, std, a, b", [
        (0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 1.0, 0.0, 5.0),
        (0.0, 1.0, -0.5, 0.5),
    ])
    def test_trunc_normal_matches_torch_statistics(self, torch, mean, std, a, b):
        ours = init.trunc_normal_(wally.empty(N), mean, std, a, b).array.astype(np.float64)
        theirs = torch.nn.init.trunc_normal_(torch.empty(N, dtype=torch.float64), mean, std,
                                             a, b).numpy()
        assert ours.min() >= a and ours.max() <= b
        assert ours.mean() == pytest.approx(theirs.mean(), abs=0.02 * (b - a) / 2)
        assert ours.std() == pytest.approx(theirs.std(), rel=0.02)
        # The shape, not only the moments: compare deciles.
        qs = np.linspace(0.1, 0.9, 9)
        np.testing.assert_allclose(np.quantile(ours, qs), np.quantile(theirs, qs),
                                   atol=0.02 * (b - a))

    def test_trunc_normal_rejects_an_empty_window(self):
        with pytest.raises(ValueError, match="mass"):
            init.trunc_normal_(wally.empty(10), mean=0.0, std=1.0, a=8.0, b=9.0)
        with pytest.raises(ValueError, match="a < b"):
            init.trunc_normal_(wally.empty(10), a=1.0, b=-1.0)


class TestContract:
    def test_constant_zeros_ones_eye(self):
        t = wally.empty(3, 4)
        assert init.constant_(t, 0.25) is t and (t.array == 0.25).all()
        assert (init.zeros_(t).array == 0).all()
        assert (init.ones_(t).array == 1).all()
        np.testing.assert_array_equal(init.eye_(wally.empty(3, 4)).array, np.eye(3, 4))
        with pytest.raises(ValueError, match="2-D"):
            init.eye_(wally.empty(2, 2, 2))

    @pytest.mark.parametrize("fn", [
        lambda t: init.uniform_(t), lambda t: init.normal_(t), lambda t: init.trunc_normal_(t),
        lambda t: init.xavier_uniform_(t), lambda t: init.xavier_normal_(t),
        lambda t: init.kaiming_uniform_(t), lambda t: init.kaiming_normal_(t),
        lambda t: init.constant_(t, 3.0), lambda t: init.zeros_(t), lambda t: init.ones_(t),
    ])
    @pytest.mark.parametrize("dtype", [wally.float32, wally.float64])
    def test_in_place_on_a_parameter_without_a_graph(self, fn, dtype):
        layer = nn.Linear(6, 5, dtype=dtype)
        weight, array = layer.weight, layer.weight.array
        assert fn(weight) is weight
        assert weight.array is array and weight.dtype == dtype  # same memory, same dtype
        assert weight.requires_grad and weight.is_leaf and weight.grad_fn is None

    def test_seeded_and_explicit_generators(self):
        wally.manual_seed(11)
        a = init.xavier_uniform_(wally.empty(5, 5)).array.copy()
        wally.manual_seed(11)
        b = init.xavier_uniform_(wally.empty(5, 5)).array.copy()
        np.testing.assert_array_equal(a, b)
        c = init.normal_(wally.empty(5), generator=np.random.default_rng(0)).array
        d = init.normal_(wally.empty(5), generator=np.random.default_rng(0)).array
        np.testing.assert_array_equal(c, d)

    def test_zero_element_tensor_is_a_warned_no_op(self):
        with pytest.warns(UserWarning, match="zero-element"):
            init.kaiming_uniform_(wally.empty(0, 3))

    def test_d2l_style_apply(self):
        def init_weights(m):
            if type(m) is nn.Linear:
                init.normal_(m.weight, std=0.01)
                init.zeros_(m.bias)

        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        net.apply(init_weights)
        assert net[1].weight.array.std() == pytest.approx(0.01, rel=0.02)
        assert not net[3].bias.array.any()

    def test_rejects_non_tensors(self):
        with pytest.raises(TypeError, match="wally Tensor"):
            init.normal_(np.zeros(3))


# PyTorch's default of Linear and every convolution, written once (init._reset_weight_and_bias):
# weight and bias from U(±1/√fan_in), fan_in read from the weight's dimension 1 on.
DEFAULT_LAYERS = {
    "Linear": (lambda: nn.Linear(400, 500), 400),
    "Conv2d": (lambda: nn.Conv2d(16, 500, 5, groups=2), 8 * 25),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(500, 16, 3, groups=4), 4 * 9),
    "Conv1d": (lambda: nn.Conv1d(6, 300, 7), 6 * 7),
}


@pytest.mark.parametrize("name", DEFAULT_LAYERS)
def test_layers_default_to_kaiming_sqrt5_with_the_bias_bound(name):
    wally.manual_seed(0)
    layer, fan_in = DEFAULT_LAYERS[name][0](), DEFAULT_LAYERS[name][1]
    bound = 1 / math.sqrt(fan_in)
    assert_uniform(layer.weight.array.ravel(), bound)
    bias = layer.bias.array
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.8 * bound
    assert abs(float(bias.mean())) < 4 * bound / math.sqrt(3 * bias.size)


def test_layers_with_no_inputs_get_a_zero_bias():
    with pytest.warns(UserWarning, match="zero-element"):
        layers = [nn.Linear(0, 5), nn.Conv2d(0, 4, 3)]
    for layer in layers:
        assert layer.bias.array.shape[0] > 0 and not layer.bias.array.any()
