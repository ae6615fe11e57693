"""ONNX export: every layer and option, and the whole model zoo, run in onnxruntime.

Each exported file passes ``onnx.checker.check_model(path, full_check=True)`` and onnxruntime
reproduces wally's output on a batch of another size than the traced one (the batch axis is
dynamic) to ``|got − expected| ≤ RTOL·|expected| + ATOL·max(1, max|expected|)``: a relative
error of 1e-5, plus an absolute one of 1e-6 of the output's scale for outputs near zero, where
float32 rounding differences between two correct implementations (a GEMM summed in another
order, Erf against wally's erfc) are relatively large. (The zoo needs at most 6e-7 there.)
"""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import nn
from wally.nn import functional as F
from wally.tensor import Tensor

onnx = pytest.importorskip(
    "onnx", reason="ONNX export tests need onnx and onnxruntime: pip install onnx onnxruntime"
)
ort = pytest.importorskip(
    "onnxruntime", reason="ONNX export tests need onnxruntime: pip install onnxruntime"
)

from wally.onnx import UnsupportedOperatorError, export  # noqa: E402

RTOL = 1e-5
ATOL = 1e-6


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial batch-norm statistics and affine parameters, so that BN is not identity."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            channels = module.num_features
            module.running_mean.array[...] = rng.normal(0, 0.5, channels)
            module.running_var.array[...] = rng.uniform(0.5, 2.0, channels)
            if module.weight is not None:
                module.weight.array[...] = rng.uniform(0.5, 1.5, channels)
                module.bias.array[...] = rng.normal(0, 0.2, channels)
    return model


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * scale)


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _expected(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with wally.no_grad():
        return model(Tensor(x)).array


def assert_runs_like_wally(model, shape, tmp_path, *, opset=17, batch=3, seed=0, **kwargs):
    """Export with a batch of 2, check the file, run a batch of ``batch`` in onnxruntime."""
    rng = np.random.default_rng(seed)
    example = rng.standard_normal((2, *shape)).astype(np.float32)
    path = tmp_path / "model.onnx"
    training = model.training
    export(model, example, path, opset_version=opset, **kwargs)
    assert model.training == training  # traced in eval mode, then put back
    onnx.checker.check_model(str(path), full_check=True)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    got = _session(path).run(None, {"input": x})[0]
    expected = _expected(model, x)
    assert_close(got, expected)
    return onnx.load(str(path))


def op_types(proto) -> list[str]:
    return [node.op_type for node in proto.graph.node]


# ----- convolutions ------------------------------------------------------------------------------
CONV2D = [
    dict(kernel_size=3),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 5), padding=(1, 2)),
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same"),  # uneven: one more on the right
    dict(kernel_size=(2, 4), padding="same", dilation=(1, 3)),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=(2, 1), dilation=2, padding=2),
    dict(kernel_size=3, groups=2, padding=1),
    dict(kernel_size=3, groups=4, padding=1, bias=False),  # depthwise
    dict(kernel_size=3, padding=(1, 2), padding_mode="reflect"),
    dict(kernel_size=3, padding=1, padding_mode="replicate"),
    dict(kernel_size=3, padding=(2, 1), padding_mode="circular"),
    dict(kernel_size=4, padding="same", padding_mode="reflect"),
    dict(kernel_size=3, stride=2, padding=2, padding_mode="circular", dilation=2),
]


@pytest.mark.parametrize("options", CONV2D, ids=repr)
def test_conv2d(options, tmp_path):
    model = nn.Conv2d(4, 8, **options)
    proto = assert_runs_like_wally(model, (4, 9, 11), tmp_path)
    assert op_types(proto)[-1] == "Conv"
    mode = options.get("padding_mode", "zeros")
    if mode != "zeros":  # a separate Pad, or (circular before opset 19) slices joined
        assert op_types(proto)[0] == ("Slice" if mode == "circular" else "Pad")


CONV1D = [
    dict(kernel_size=3),
    dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, stride=2, dilation=2, padding=3),
    dict(kernel_size=5, padding=2, padding_mode="reflect"),
    dict(kernel_size=5, padding=2, padding_mode="replicate"),
    dict(kernel_size=5, padding=2, padding_mode="circular"),
    dict(kernel_size=3, groups=3, padding=1),
]


@pytest.mark.parametrize("options", CONV1D, ids=repr)
def test_conv1d(options, tmp_path):
    assert_runs_like_wally(nn.Conv1d(3, 6, **options), (3, 17), tmp_path)


CONV3D = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(2, 3, 4), padding="same"),
    dict(kernel_size=3, stride=2, dilation=(1, 2, 1), padding=(0, 2, 1)),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, padding=(1, 2, 1), padding_mode="replicate"),
    dict(kernel_size=3, padding=1, padding_mode="circular"),
]


@pytest.mark.parametrize("options", CONV3D, ids=repr)
def test_conv3d(options, tmp_path):
    assert_runs_like_wally(nn.Conv3d(2, 4, **options), (2, 5, 6, 7), tmp_path)


@pytest.mark.parametrize("opset", [13, 17, 18, 19, 21])
def test_circular_padding_before_and_after_pad_wrap(opset, tmp_path):
    """Opset 19 added Pad's 'wrap' mode; before it circular padding is sliced and joined."""
    model = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular")
    proto = assert_runs_like_wally(model, (2, 5, 6), tmp_path, opset=opset)
    assert ("Pad" in op_types(proto)) == (opset >= 19)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_functional_pad(mode, tmp_path):
    class Padded(nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 2, 2, 0), mode=mode)

    assert_runs_like_wally(Padded(), (2, 4, 5), tmp_path)


def test_constant_pad_with_a_value_and_cropping(tmp_path):
    class Padded(nn.Module):
        def forward(self, x):
            return F.pad(F.pad(x, (2, 1), value=1.5), (-1, 0, 1, -2))

    assert_runs_like_wally(Padded(), (3, 6, 5), tmp_path)


# ----- pooling -----------------------------------------------------------------------------------
POOLS = [
    (nn.MaxPool2d, dict(kernel_size=2)),
    (nn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1)),
    (nn.MaxPool2d, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (nn.MaxPool2d, dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), ceil_mode=True)),
    (nn.MaxPool2d, dict(kernel_size=3, stride=1, dilation=2, padding=1)),
    (nn.MaxPool2d, dict(kernel_size=2, stride=3, dilation=4, ceil_mode=True)),
    (nn.MaxPool1d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (nn.MaxPool3d, dict(kernel_size=2, stride=2, ceil_mode=True)),
    (nn.AvgPool2d, dict(kernel_size=2)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    (nn.AvgPool1d, dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    (nn.AvgPool1d, dict(kernel_size=3, padding=1, count_include_pad=False)),
    (nn.AvgPool3d, dict(kernel_size=2, stride=2, padding=1, count_include_pad=False)),
    (nn.AdaptiveAvgPool2d, dict(output_size=1)),
    (nn.AdaptiveAvgPool2d, dict(output_size=(3, 4))),  # unequal windows on 9×10
    (nn.AdaptiveAvgPool2d, dict(output_size=(3, 5))),  # equal windows: AveragePool
    (nn.AdaptiveAvgPool2d, dict(output_size=(None, 4))),
    (nn.AdaptiveAvgPool1d, dict(output_size=4)),
    (nn.AdaptiveAvgPool3d, dict(output_size=(2, 3, 1))),
    (nn.AdaptiveMaxPool2d, dict(output_size=1)),
    (nn.AdaptiveMaxPool2d, dict(output_size=(4, 3))),
    (nn.AdaptiveMaxPool2d, dict(output_size=(3, 5))),
    (nn.AdaptiveMaxPool1d, dict(output_size=4)),
    (nn.AdaptiveMaxPool3d, dict(output_size=(2, 4, 3))),
]
SPATIAL = {1: (10,), 2: (9, 10), 3: (5, 6, 7)}


@pytest.mark.parametrize("layer, options", POOLS, ids=lambda p: getattr(p, "__name__", repr(p)))
@pytest.mark.parametrize("opset", [17, 18])
def test_pooling(layer, options, opset, tmp_path):
    nd = int(layer.__name__[-2])
    assert_runs_like_wally(layer(**options), (3, *SPATIAL[nd]), tmp_path, opset=opset)


@pytest.mark.parametrize("layer, options, expected", [
    (nn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), ["MaxPool"]),
    # a dilated ceil_mode window needs padding as large as the kernel: onnxruntime refuses
    # that in MaxPool's pads, so it is a Pad with -inf first
    (nn.MaxPool2d, dict(kernel_size=2, stride=3, dilation=4, ceil_mode=True),
     ["Pad", "MaxPool"]),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1), ["AveragePool"]),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False), ["AveragePool"]),
    # PyTorch's divisor clips a ceil_mode window to the padded input: ONNX has no such mode
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
     ["AveragePool", "Mul"]),
    (nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
     ["AveragePool", "Mul"]),
])
def test_pooling_operators(layer, options, expected, tmp_path):
    assert op_types(assert_runs_like_wally(layer(**options), (2, 9, 10), tmp_path)) == expected


def test_global_pooling_is_one_onnx_operator(tmp_path):
    proto = assert_runs_like_wally(nn.AdaptiveAvgPool2d(1), (3, 5, 7), tmp_path)
    assert op_types(proto) == ["GlobalAveragePool"]


# ----- normalisation, linear, activations -------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [
    (lambda: nn.BatchNorm1d(5), (5,)),
    (lambda: nn.BatchNorm1d(5), (5, 7)),
    (lambda: nn.BatchNorm2d(4), (4, 5, 6)),
    (lambda: nn.BatchNorm2d(4, affine=False), (4, 5, 6)),
    (lambda: nn.BatchNorm3d(3, eps=1e-3), (3, 4, 5, 6)),
], ids=["1d-(N,C)", "1d-(N,C,L)", "2d", "2d-no-affine", "3d"])
def test_batch_norm_uses_the_running_statistics(layer, shape, tmp_path):
    model = _randomise(layer())
    model.train()  # the export must switch to eval mode, and put training back afterwards
    proto = assert_runs_like_wally(model, shape, tmp_path)
    assert op_types(proto) == ["BatchNormalization"]
    names = {init.name for init in proto.graph.initializer}
    assert {"running_mean", "running_var"} <= names


def test_linear_on_matrices_and_on_higher_rank_inputs(tmp_path):
    assert "Gemm" in op_types(assert_runs_like_wally(nn.Linear(6, 4), (6,), tmp_path))
    assert "MatMul" in op_types(assert_runs_like_wally(nn.Linear(6, 4), (3, 6), tmp_path))
    assert_runs_like_wally(nn.Linear(6, 4, bias=False), (3, 6), tmp_path)
    assert_runs_like_wally(nn.Linear(6, 4, bias=False), (6,), tmp_path)


ACTIVATIONS = [
    nn.ReLU, lambda: nn.LeakyReLU(0.2), nn.Sigmoid, nn.Tanh, nn.GELU,
    lambda: nn.GELU(approximate="tanh"), lambda: nn.Softplus(), lambda: nn.Softplus(2.0, 1.0),
    lambda: nn.Softmax(dim=1), lambda: nn.Softmax(dim=-1), lambda: nn.LogSoftmax(dim=1),
    lambda: nn.Dropout(0.5),
]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=range(len(ACTIVATIONS)))
@pytest.mark.parametrize("opset", [13, 17, 20])
def test_activations(layer, opset, tmp_path):
    class Scaled(nn.Module):  # values out to ±12, where the tails of the curves are tested
        def __init__(self):
            super().__init__()
            self.act = layer()

        def forward(self, x):
            return self.act(x * 4.0)

    assert_runs_like_wally(Scaled(), (3, 4, 5), tmp_path, opset=opset)


def test_gelu_is_one_operator_from_opset_20(tmp_path):
    assert op_types(assert_runs_like_wally(nn.GELU(), (7,), tmp_path, opset=20)) == ["Gelu"]
    assert "Erf" in op_types(assert_runs_like_wally(nn.GELU(), (7,), tmp_path, opset=17))


# ----- forward code: adds, concatenations, reshapes ---------------------------------------------
class Branchy(nn.Module):
    """Residual add, concatenation, functional ReLU, arithmetic with constants, reshapes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.other = nn.Conv2d(3, 2, 1)
        self.head = nn.Linear(5 * 4 * 5, 3)

    def forward(self, x):
        y = F.relu(self.conv(x) + x)
        y = wally.cat((y, self.other(x) * 0.5), dim=1)
        y = y - x.mean((1,), keepdim=True) / 3.0
        y = (y.permute(0, 1, 3, 2) ** 2).permute(0, 1, 3, 2).clamp(max=4.0)
        y = F.max_pool2d(y, 2, ceil_mode=True)
        return F.log_softmax(self.head(y.flatten(1)), dim=1)


def test_forward_code_is_traced(tmp_path):
    proto = assert_runs_like_wally(Branchy(), (3, 8, 9), tmp_path)
    used = set(op_types(proto))
    assert {"Add", "Concat", "Relu", "Mul", "Sub", "Div", "ReduceMean", "Transpose", "Pow",
            "Clip", "MaxPool", "Reshape", "Gemm", "LogSoftmax"} <= used
    names = {init.name for init in proto.graph.initializer}
    assert {"conv.weight", "conv.bias", "other.weight", "head.weight", "head.bias"} <= names


def test_initializers_are_the_state_dict(tmp_path):
    model = _randomise(wally.models.get_model("lenet_modern"))
    proto = assert_runs_like_wally(model, (1, 28, 28), tmp_path)
    initializers = {init.name: onnx.numpy_helper.to_array(init) for init in proto.graph.initializer}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        np.testing.assert_array_equal(initializers[key], value.array)


def test_static_batch(tmp_path):
    path = tmp_path / "static.onnx"
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    export(model, np.zeros((4, 1, 5, 5), np.float32), path, dynamic_batch=False,
           input_names=["images"], output_names=["features"])
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [4, 1, 5, 5]
    assert graph.input[0].name == "images" and graph.output[0].name == "features"
    x = np.random.default_rng(0).standard_normal((4, 1, 5, 5)).astype(np.float32)
    got = _session(path).run(["features"], {"images": x})[0]
    assert_close(got, _expected(model, x))


def test_dynamic_batch_is_symbolic(tmp_path):
    proto = assert_runs_like_wally(nn.Sequential(nn.Linear(3, 2)), (3,), tmp_path, batch=7)
    for value in (proto.graph.input[0], proto.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"


def test_several_outputs(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 3)

        def forward(self, x):
            return self.a(x), F.softmax(self.b(x), dim=1), x

    path = tmp_path / "heads.onnx"
    model = TwoHeads()
    export(model, wally.zeros(2, 4), path)  # a wally tensor as the example works too
    onnx.checker.check_model(str(path), full_check=True)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == ["output_0", "output_1", "output_2"]
    got = session.run(None, {"input": x})
    model.eval()
    with wally.no_grad():
        expected = [t.array for t in model(Tensor(x))]
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e)


# ----- errors -------------------------------------------------------------------------------------
class Flipper(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return self.conv(x).flip(-1)


def test_unsupported_operation_names_the_op_and_the_module(tmp_path):
    model = nn.Sequential(nn.ReLU(), Flipper())
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")
    message = r"wally\.ops\.Flip .*module '1' \(Flipper\)"
    with pytest.raises(UnsupportedOperatorError, match=message):
        export(model, np.zeros((1, 1, 5, 5), np.float32), path)
    assert path.read_bytes() == b"previous"  # nothing written over it
    assert issubclass(UnsupportedOperatorError, ValueError)


def test_python_numbers_export_as_constants(tmp_path):
    """``x + 1.0`` and ``2 ** x``: the node records the number (``Function.constants``), and the
    exporter writes it as an initializer in the result's dtype."""

    class Numbers(nn.Module):
        def forward(self, x):
            return (1.0 - (x + 1.5) * 3.0 / 2.0) ** 2 + 2.0**x

    proto = assert_runs_like_wally(Numbers(), (4,), tmp_path)
    assert {"Add", "Sub", "Mul", "Div", "Pow"} <= set(op_types(proto))
    arrays = [onnx.numpy_helper.to_array(init) for init in proto.graph.initializer]
    values = sorted(float(a.reshape(-1)[0]) for a in arrays if a.size == 1)
    assert values == [1.0, 1.5, 2.0, 2.0, 2.0, 3.0]


def test_reshape_across_the_batch_needs_a_static_batch(tmp_path):
    class Merge(nn.Module):
        def forward(self, x):
            return x.reshape(-1)

    with pytest.raises(UnsupportedOperatorError, match="dynamic_batch=False"):
        export(Merge(), np.zeros((2, 3), np.float32), tmp_path / "m.onnx")
    export(Merge(), np.zeros((2, 3), np.float32), tmp_path / "m.onnx", dynamic_batch=False)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(_session(tmp_path / "m.onnx").run(None, {"input": x})[0],
                                  x.reshape(-1))


def test_batch_norm_in_training_mode_is_refused(tmp_path):
    class AlwaysTraining(nn.Module):
        def forward(self, x):
            return F.batch_norm(x, wally.zeros(3), wally.ones(3), training=True)

    with pytest.raises(UnsupportedOperatorError, match="training=True"):
        export(AlwaysTraining(), np.ones((2, 3), np.float32), tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="opset_version"):
        export(model, np.zeros((1, 2), np.float32), tmp_path / "m.onnx", opset_version=9)
    with pytest.raises(ValueError, match="output_names"):
        export(model, np.zeros((1, 2), np.float32), tmp_path / "m.onnx", output_names=["a", "b"])


# ----- the model zoo --------------------------------------------------------------------------
# Default architectures and input sizes, except where a 224×224 input and 4096-wide linear
# layers would take minutes: there fewer channels and a smaller input, same layers.
ZOO = {
    "lenet": dict(),
    "lenet_modern": dict(),
    "alexnet": dict(input_size=100, width=0.25, hidden_features=256),
    "vgg": dict(arch=((1, 16), (2, 32)), input_size=32, hidden_features=64),
    "vgg11": dict(input_size=64, width=0.25, hidden_features=256),
    "nin": dict(input_size=96),
    "googlenet": dict(),
    "resnet": dict(arch=((2, 64), (2, 128))),
    "resnet18": dict(),
    "resnet18_cifar": dict(),
    "densenet": dict(),
    "wally_finder": dict(),
    "p4cnn": dict(),
    "z2cnn": dict(),
    "p4_wally_finder": dict(),
    "fcn1d": dict(),
    "tcn": dict(),
    "textcnn": dict(vocab_size=30, num_classes=4, max_length=40),
}


def test_the_zoo_is_covered():
    graph_models = ["gcn", "lightgcn"]  # graph inputs: no ONNX export of sparse products yet
    assert sorted(ZOO) == [m for m in wally.models.list_models() if m not in graph_models]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model(name, tmp_path):
    model = _randomise(wally.models.get_model(name, **ZOO[name]))
    if name == "textcnn":  # token ids, not images: an int64 example (tests/test_text_model.py)
        ids = np.random.default_rng(0).integers(0, 30, (3, 40))
        export(model.eval(), ids, tmp_path / "model.onnx", dynamic_batch=True)
        got = _session(tmp_path / "model.onnx").run(None, {"input": ids})[0]
        assert_close(got, model(wally.tensor(ids)).detach().numpy())
        return
    shape = model.input_size
    if name in ("wally_finder", "p4_wally_finder"):  # fully convolutional: a heatmap
        shape = (3, 48, 40)
    assert_runs_like_wally(model, tuple(shape), tmp_path)


# ----- the command line ---------------------------------------------------------------------------
def test_cli_exports_a_checkpoint(tmp_path, capsys):
    pytest.importorskip("safetensors", reason="checkpoints need safetensors")
    from wally.cli import main
    from wally.io import save_checkpoint

    model = _randomise(wally.models.get_model("lenet_modern"))
    checkpoint = tmp_path / "checkpoint.safetensors"
    save_checkpoint(checkpoint, model)
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(checkpoint), "--onnx", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    onnx.checker.check_model(str(out), full_check=True)
    x = np.random.default_rng(2).standard_normal((3, 1, 28, 28)).astype(np.float32)
    got = _session(out).run(None, {"input": x})[0]
    assert_close(got, _expected(model, x))

    finder = tmp_path / "finder.safetensors"
    save_checkpoint(finder, wally.models.get_model("wally_finder"))
    assert main(["export", str(finder), "--onnx", str(out), "--input-size", "3", "64", "48",
                 "--opset", "20"]) == 0
    graph = onnx.load(str(out)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [3, 64, 48]
    assert main(["export", str(finder), "--onnx", str(out), "--batch-size", "2"]) == 0
    graph = onnx.load(str(out)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [2, 3, 32, 32]


def test_cli_errors(tmp_path, capsys):
    pytest.importorskip("safetensors", reason="checkpoints need safetensors")
    from wally.cli import main
    from wally.io import save_checkpoint

    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx",
                 str(tmp_path / "m.onnx")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    checkpoint = tmp_path / "lenet.safetensors"
    save_checkpoint(checkpoint, wally.models.get_model("lenet"))
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"),
                 "--opset", "5"]) == 1
    assert "opset_version must be an int from 13" in capsys.readouterr().err
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"),
                 "--input-size", "1", "8", "8"]) == 1  # too small for lenet's layers
    assert "wally export: error:" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
