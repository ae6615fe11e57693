"""Numerics: anomaly detection, extreme logits, batch norm on one example, float16, and
convolutions that must run in chunks to stay within a memory budget."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import wally
import wally.nn.functional as F
from _reliability import report
from wally import nn
from wally.autograd import AnomalyError, detect_anomaly

# ----- detect_anomaly: the first op that makes NaN or Inf from finite values, named ------------
TINY = float(np.finfo(np.float32).tiny) / 4  # subnormal: 1/x overflows float32
FORWARD_CASES = {
    # name: (input values, the op, the Function that must be named)
    "log of a negative": ([1.0, -1.0], lambda x: x.log(), "Log"),
    "log of zero": ([1.0, 0.0], lambda x: x.log(), "Log"),
    "log of a 0-d negative": (-1.0, lambda x: x.log(), "Log"),  # NumPy returns a scalar
    "sqrt of a negative": ([4.0, -4.0], lambda x: x.sqrt(), "Sqrt"),
    "exp overflow": ([1.0, 100.0], lambda x: x.exp(), "Exp"),
    "division by zero": ([1.0, 2.0], lambda x: x / (x - x), "Div"),
    "pow overflow": ([2.0, 1e20], lambda x: x ** 3, "PowScalar"),
    "zero times inf in mul": ([1.0, 1e30], lambda x: (x * 1e30) * 1e-30 * (x * 1e30), "Mul"),
}
BACKWARD_CASES = {
    # forward finite, the gradient not: name: (values, op, Function named in the backward pass)
    "sqrt at zero": ([1.0, 0.0], lambda x: x.sqrt().sum(), "Sqrt"),
    "log of a subnormal": ([1.0, TINY], lambda x: x.log().sum(), "Log"),
    "the norm of a zero vector": ([0.0, 0.0], lambda x: (x * x).sum().sqrt(), "Sqrt"),
    "pow with a fractional exponent at zero": ([1.0, 0.0], lambda x: (x ** 0.5).sum(),
                                               "PowScalar"),
    "division by a tiny denominator": ([1.0, 1e-20], lambda x: (wally.ones(2) / x).sum(),
                                       "Div"),
}


@pytest.fixture(scope="module")
def anomalies():
    caught: dict[str, list[str]] = {"forward": [], "backward": []}
    yield caught
    report("anomalies", {"caught_forward": len(caught["forward"]),
                         "caught_backward": len(caught["backward"]),
                         "caught": len(caught["forward"]) + len(caught["backward"]),
                         "ops": sorted(set(caught["forward"] + caught["backward"]))})


@pytest.mark.parametrize("case", sorted(FORWARD_CASES))
def test_detect_anomaly_names_the_op_in_the_forward_pass(case, anomalies):
    values, op, name = FORWARD_CASES[case]
    x = wally.tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with detect_anomaly(), pytest.raises(AnomalyError) as caught:
            op(x)
    message = str(caught.value)
    assert f"'{name}'" in message and "forward pass" in message, message
    assert "test_numerics.py" in message, "the message should say where the op was called"
    anomalies["forward"].append(name)


@pytest.mark.parametrize("case", sorted(BACKWARD_CASES))
def test_detect_anomaly_names_the_op_in_the_backward_pass(case, anomalies):
    values, op, name = BACKWARD_CASES[case]
    x = wally.tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with detect_anomaly():
            loss = op(x)
            assert np.isfinite(loss.item()), "the forward pass should stay finite"
            with pytest.raises(AnomalyError) as caught:
                loss.backward()
    message = str(caught.value)
    assert f"'{name}'" in message and "backward pass" in message, message
    anomalies["backward"].append(name)


def test_a_nan_that_comes_in_is_not_blamed_on_the_next_op():
    x = wally.tensor([float("nan"), 1.0], requires_grad=True)
    with detect_anomaly():
        y = (x * 2).sum()  # the NaN was in the input: no op made it
    assert np.isnan(y.item())


def test_without_detect_anomaly_nothing_is_checked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = wally.tensor([-1.0]).log()
    assert np.isnan(y.item())


def test_detect_anomaly_catches_a_diverging_training_step():
    wally.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = wally.randn(5, 4) * 1e30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with detect_anomaly(), pytest.raises(AnomalyError, match="forward pass"):
            loss = F.cross_entropy(model(x) * 1e30, wally.tensor([0, 1, 2, 0, 1]))
            loss.backward()


# ----- softmax family at logits of ±1e4 -------------------------------------------------------
def _log_softmax_reference(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


EXTREME_LOGITS = [
    [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]],
    [[1e4, 1e4 - 1, 1e4 - 2], [-1e4, -1e4 + 3, 0.5], [0.0, 0.0, 0.0]],
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("logits", EXTREME_LOGITS)
def test_softmax_log_softmax_and_cross_entropy_at_logits_of_1e4(logits, dtype):
    x_array = np.array(logits, dtype=dtype)
    expected_log = _log_softmax_reference(x_array, axis=1)
    x = wally.tensor(x_array, requires_grad=True)

    log_probabilities = F.log_softmax(x, dim=1)
    probabilities = F.softmax(x, dim=1)
    assert log_probabilities.dtype == x.dtype and probabilities.dtype == x.dtype
    assert np.all(np.isfinite(log_probabilities.detach().numpy()))
    tolerance = 1e-6 if dtype == np.float64 else 2e-3  # float32 spacing at 1e4 is ~1e-3
    np.testing.assert_allclose(log_probabilities.detach().numpy(), expected_log,
                               rtol=1e-6, atol=tolerance)
    np.testing.assert_allclose(probabilities.detach().numpy(), np.exp(expected_log),
                               rtol=1e-6, atol=1e-7)

    target = np.array([1, 0, 2])
    loss = F.cross_entropy(x, wally.tensor(target))
    expected_loss = -expected_log[np.arange(3), target].mean()
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=1e-6)
    loss.backward()
    expected_grad = (np.exp(expected_log) - np.eye(3)[target]) / 3
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), expected_grad, atol=1e-6)


def test_softmax_over_other_dims_and_spatial_cross_entropy_at_1e4():
    rng = np.random.default_rng(0)
    x_array = (rng.choice([-1e4, 0.0, 1e4], size=(2, 4, 3, 3))
               + rng.normal(size=(2, 4, 3, 3))).astype(np.float32)
    for dim in (0, 1, 2, 3, -1):
        result = F.log_softmax(wally.tensor(x_array), dim=dim).numpy()
        np.testing.assert_allclose(result, _log_softmax_reference(x_array, dim), atol=2e-3)
    target = rng.integers(0, 4, (2, 3, 3))
    loss = F.cross_entropy(wally.tensor(x_array), wally.tensor(target))
    log_p = _log_softmax_reference(x_array, 1)
    expected = -np.take_along_axis(log_p, target[:, None], axis=1).mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


# ----- batch norm on a batch of one ---------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (1, 4)), (nn.BatchNorm1d, (1, 4, 1)),
                                          (nn.BatchNorm2d, (1, 4, 1, 1))])
def test_batch_norm_refuses_one_value_per_channel_in_training(layer, shape):
    bn = layer(4)
    bn.train()
    with pytest.raises(ValueError, match=r"batch_norm: Expected more than 1 value per channel "
                                         r"when training, got input size \(1, 4"):
        bn(wally.randn(*shape))


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (1, 4)), (nn.BatchNorm1d, (1, 4, 5)),
                                          (nn.BatchNorm2d, (1, 4, 1, 1)),
                                          (nn.BatchNorm2d, (1, 4, 3, 2))])
def test_batch_norm_on_a_batch_of_one_in_eval_uses_the_running_statistics(layer, shape):
    wally.manual_seed(1)
    bn = layer(4)
    bn.train()
    for _ in range(3):  # move the running statistics away from 0 and 1
        bn(wally.randn(8, *shape[1:]) * 3 + 2)
    with wally.no_grad():
        bn.weight.array[...] = np.array([0.5, 1.0, 2.0, -1.0], dtype=np.float32)
        bn.bias.array[...] = np.array([0.1, 0.0, -0.3, 1.0], dtype=np.float32)
    bn.eval()
    x = wally.randn(*shape)
    y = bn(x).detach().numpy()
    view = (1, 4) + (1,) * (len(shape) - 2)
    mean = bn.running_mean.numpy().astype(np.float64).reshape(view)
    var = bn.running_var.numpy().astype(np.float64).reshape(view)
    expected = ((x.numpy() - mean) / np.sqrt(var + bn.eps) * bn.weight.detach().numpy().reshape(
        view) + bn.bias.detach().numpy().reshape(view))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert y.shape == shape


def test_batch_norm_on_a_batch_of_one_with_spatial_extent_trains(torch):
    x = np.random.default_rng(2).normal(size=(1, 3, 4, 4)).astype(np.float32)
    ours = nn.BatchNorm2d(3)
    theirs = torch.nn.BatchNorm2d(3)
    y = ours(wally.tensor(x)).detach().numpy()
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5)


# ----- float16 ---------------------------------------------------------------------------------
def _f16(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float16)


FLOAT16_OPS = {
    # name: (wally op on float16 tensors, the float64 reference on the same values)
    "conv1d": (lambda x, w: F.conv1d(x, w, padding=1), ((2, 3, 9), (4, 3, 3))),
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), ((2, 3, 8, 8), (4, 3, 3, 3))),
    "conv3d": (lambda x, w: F.conv3d(x, w), ((1, 2, 4, 4, 4), (3, 2, 2, 2, 2))),
    "linear": (lambda x, w: F.linear(x, w), ((5, 64), (7, 64))),
}


@pytest.mark.parametrize("name", sorted(FLOAT16_OPS))
def test_float16_convolutions_and_linear_are_supported_and_accurate(name, torch):
    op, (x_shape, w_shape) = FLOAT16_OPS[name]
    x, w = _f16(x_shape, 1), _f16(w_shape, 2, scale=0.3)
    y = op(wally.tensor(x), wally.tensor(w))
    assert y.dtype == wally.float16
    torch_op = {"conv1d": lambda a, b: torch.nn.functional.conv1d(a, b, padding=1),
                "conv2d": lambda a, b: torch.nn.functional.conv2d(a, b, stride=2, padding=1),
                "conv3d": torch.nn.functional.conv3d,
                "linear": torch.nn.functional.linear}[name]
    expected = torch_op(torch.tensor(x, dtype=torch.float64),
                        torch.tensor(w, dtype=torch.float64)).numpy()
    # NumPy accumulates float16 products in float32: only the result is rounded to float16.
    np.testing.assert_allclose(y.numpy().astype(np.float64), expected, rtol=2e-3, atol=2e-3)


def test_float16_pooling_activations_and_losses_are_supported():
    x = wally.tensor(_f16((2, 3, 6, 6), 3))
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.relu(x), F.softmax(x, dim=1),
              F.log_softmax(x, dim=1)):
        assert y.dtype == wally.float16 and np.all(np.isfinite(y.numpy()))
    logits = wally.tensor(np.array([[1e4, -1e4, 0.0]], dtype=np.float16))
    loss = F.cross_entropy(logits, wally.tensor([1]))
    assert loss.dtype == wally.float16 and loss.item() == 2e4


@pytest.mark.parametrize("layer, shape", [(lambda: nn.Conv2d(3, 4, 3), (1, 3, 5, 5)),
                                          (lambda: nn.Linear(3, 4), (2, 3)),
                                          (lambda: nn.Conv1d(3, 4, 3), (1, 3, 5))])
def test_a_float32_layer_refuses_a_float16_input_clearly(layer, shape):
    module = layer()
    with pytest.raises(TypeError, match=r"expected a (wally\.)?float32 input, got "
                                        r"(wally\.)?float16; convert the input "
                                        r"\(x.to\((wally\.)?float32\)\) or the layer"):
        module(wally.tensor(np.zeros(shape, dtype=np.float16)))
    module.to(wally.float16)  # the way out the message names works
    assert module(wally.tensor(np.zeros(shape, dtype=np.float16))).dtype == wally.float16


def test_float16_batch_norm_in_training_on_a_small_batch_is_accurate():
    x = _f16((4, 3, 5, 5), 4)
    bn = nn.BatchNorm2d(3).to(wally.float16)
    y = bn(wally.tensor(x)).detach().numpy()
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3), keepdims=True), x64.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x64 - mean) / np.sqrt(var + 1e-5), atol=1e-2)


def test_float16_batch_norm_in_training_on_65536_values_per_channel():
    x = _f16((64, 2, 32, 32), 5)
    bn = nn.BatchNorm2d(2).to(wally.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = bn(wally.tensor(x)).detach().numpy()
    assert np.all(np.isfinite(y))
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2, 3), keepdims=True), x64.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x64 - mean) / np.sqrt(var + 1e-5), atol=2e-2)


# ----- convolutions within a memory budget ---------------------------------------------------
conv_module = pytest.importorskip("wally.functional.conv")
HAS_BUDGET = hasattr(conv_module, "im2col_budget")


@pytest.mark.skipif(not HAS_BUDGET, reason="wally.functional.conv.im2col_budget is not there")
@pytest.mark.parametrize("case", [
    # (input shape, weight shape, stride, padding, dilation, groups)
    ((6, 3, 20, 20), (8, 3, 3, 3), 1, 1, 1, 1),     # chunks of images
    ((1, 4, 40, 36), (6, 4, 5, 5), 2, 2, 1, 1),     # one image: chunks of output rows
    ((3, 4, 17, 19), (8, 2, 3, 3), 1, "same", 2, 2),  # grouped, dilated, 'same'
])
def test_a_convolution_over_budget_runs_in_chunks_with_the_same_results(case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    x_array = rng.normal(size=x_shape).astype(np.float32)
    w_array = rng.normal(size=w_shape).astype(np.float32)
    b_array = rng.normal(size=w_shape[0]).astype(np.float32)

    def run():
        x = wally.tensor(x_array, requires_grad=True)
        w = wally.tensor(w_array, requires_grad=True)
        b = wally.tensor(b_array, requires_grad=True)
        y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        (y * y).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    whole = run()
    n, c = x_shape[:2]
    out_h = whole[0].shape[2]
    # The whole im2col matrix: (C·kH·kW) x (N·outH·outW) floats; one row of one image is the least.
    columns = c * w_shape[2] * w_shape[3] * n * out_h * whole[0].shape[3] * 4
    budget = max(columns // 8, 1)
    with conv_module.im2col_budget(budget):
        assert conv_module.get_memory_budget() == budget
        chunked = run()
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not HAS_BUDGET, reason="wally.functional.conv.im2col_budget is not there")
def test_a_convolution_stays_within_its_memory_budget():
    # 16 images of 32x64x64 with a 3x3 kernel: the full column matrix would be 288 x 65536
    # floats = 72 MiB; with a 4 MiB budget the peak must stay far below that.
    x = wally.tensor(np.random.default_rng(8).normal(size=(16, 32, 64, 64)).astype(np.float32))
    w = wally.tensor(np.random.default_rng(9).normal(size=(8, 32, 3, 3)).astype(np.float32))
    full_columns = 32 * 9 * 16 * 64 * 64 * 4
    with wally.no_grad():
        expected = F.conv2d(x, w, padding=1).numpy()
        budget = 4 << 20
        with conv_module.im2col_budget(budget):
            tracemalloc.start()
            y = F.conv2d(x, w, padding=1)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    output_bytes = y.numpy().nbytes
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-4)
    assert peak < output_bytes + 3 * budget, (peak, output_bytes, full_columns)
    assert peak < full_columns / 2
    report("conv_budget", {"full_im2col_bytes": full_columns, "budget_bytes": budget,
                           "peak_traced_bytes": peak, "output_bytes": output_bytes})


def test_the_budget_refuses_nonsense():
    if not HAS_BUDGET:
        pytest.skip("wally.functional.conv.set_memory_budget is not there")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_memory_budget"):
            conv_module.set_memory_budget(bad)

