"""ONNX export of the geometry layers (ConvTranspose, Resize, DepthToSpace and the shuffles,
MaxPool's indices, MaxUnpool), each run in onnxruntime on another batch size than the traced
one and compared with wally."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import nn
from wally.nn import functional as F

onnx = pytest.importorskip("onnx", reason="needs onnx and onnxruntime: pip install onnx "
                                          "onnxruntime")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install onnxruntime")

from wally.onnx import UnsupportedOperatorError, export  # noqa: E402


def op_types(proto):
    return [node.op_type for node in proto.graph.node]


def runs_like_wally(model, shape, tmp_path, opset=17, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    example = rng.standard_normal((2, *shape)).astype(np.float32)
    path = tmp_path / "model.onnx"
    export(model, example, path, opset_version=opset)
    onnx.checker.check_model(str(path), full_check=True)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    model.eval()
    with wally.no_grad():
        expected = model(wally.tensor(x)).array
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale)
    return onnx.load(str(path))


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: nn.ConvTranspose1d(4, 6, 3, stride=3, padding=2, output_padding=1,
                                    dilation=2), (4, 5)),
        (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                    groups=2), (4, 5, 6)),
        (lambda: nn.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), bias=False), (3, 4, 4)),
        (lambda: nn.ConvTranspose2d(2, 2, 3, stride=1, padding=0, output_padding=1,
                                    dilation=2), (2, 3, 3)),  # output_padding ≥ stride
        (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2, padding=0, output_padding=2,
                                    dilation=3, bias=False), (2, 4)),
        (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), (2, 3, 3, 2)),
    ],
)
@pytest.mark.parametrize("opset", [13, 17])
def test_conv_transpose(layer, shape, opset, tmp_path):
    proto = runs_like_wally(nn.Sequential(layer()), shape, tmp_path, opset=opset)
    assert op_types(proto)[0] == "ConvTranspose"


RESIZES = [
    ({"scale_factor": 2, "mode": "nearest"}, (3, 4, 5)),
    ({"scale_factor": 3, "mode": "nearest"}, (3, 4)),
    ({"size": (7, 3), "mode": "nearest"}, (2, 5, 4)),           # fractional: a Gather
    ({"scale_factor": 1.2, "mode": "nearest"}, (2, 3)),         # kept size, scale ≠ 1
    ({"scale_factor": 2, "mode": "nearest-exact"}, (2, 3, 4)),
    ({"size": 9, "mode": "linear"}, (2, 4)),
    ({"scale_factor": 1.7, "mode": "linear", "align_corners": True}, (2, 5)),
    ({"scale_factor": (2, 0.5), "mode": "bilinear"}, (2, 4, 6)),
    ({"size": (7, 11), "mode": "bilinear", "align_corners": True}, (1, 4, 5)),
    ({"scale_factor": 2.5, "mode": "bicubic"}, (2, 3, 4)),
    ({"size": (5, 3), "mode": "bicubic", "align_corners": True}, (1, 4, 6)),
    ({"scale_factor": 1.2, "mode": "bicubic"}, (1, 3, 4)),      # kept size, scale ≠ 1
    ({"scale_factor": (1.5, 2, 0.5), "mode": "trilinear", "recompute_scale_factor": True},
     (1, 2, 3, 4)),
    ({"size": (3, 4), "mode": "bilinear", "antialias": True}, (2, 9, 11)),
    ({"scale_factor": (0.4, 1.5), "mode": "bicubic", "antialias": True}, (1, 8, 5)),
]


@pytest.mark.parametrize("kwargs, shape", RESIZES)
@pytest.mark.parametrize("opset", [13, 17, 19])
def test_resize(kwargs, shape, opset, tmp_path):
    proto = runs_like_wally(Lambda(lambda x: F.interpolate(x, **kwargs)), shape, tmp_path,
                            opset=opset)
    kinds = set(op_types(proto))
    assert kinds & {"Resize", "Gather"}


def test_upsample_layers_use_resize(tmp_path):
    model = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                          nn.UpsamplingNearest2d(scale_factor=2),
                          nn.UpsamplingBilinear2d(size=(13, 13)))
    proto = runs_like_wally(model, (2, 3, 3), tmp_path)
    assert op_types(proto).count("Resize") == 6  # one per resized axis
    for node in proto.graph.node:
        modes = {a.name: a.s.decode() for a in node.attribute if a.type == a.STRING}
        if node.name.startswith("0."):
            assert modes["coordinate_transformation_mode"] == "half_pixel"
        if node.name.startswith("1."):
            assert modes["coordinate_transformation_mode"] == "asymmetric"
            assert modes["nearest_mode"] == "floor"
        if node.name.startswith("2."):
            assert modes["coordinate_transformation_mode"] == "align_corners"


def test_pixel_and_channel_shuffles(tmp_path):
    model = nn.Sequential(nn.PixelUnshuffle(2), nn.ChannelShuffle(3), nn.PixelShuffle(2))
    proto = runs_like_wally(model, (3, 4, 6), tmp_path)
    assert "DepthToSpace" in op_types(proto)
    proto = runs_like_wally(nn.Sequential(nn.ChannelShuffle(2)), (4, 3), tmp_path)


class PoolUnpool(nn.Module):
    def __init__(self, nd, kernel, stride, padding):
        super().__init__()
        self.pool = getattr(nn, f"MaxPool{nd}d")(kernel, stride, padding, return_indices=True)
        self.unpool = getattr(nn, f"MaxUnpool{nd}d")(kernel, stride, padding)

    def forward(self, x):
        values, indices = self.pool(x)
        return self.unpool(values, indices, output_size=x.shape)


@pytest.mark.parametrize(
    "nd, kernel, stride, padding, shape",
    [(1, 2, 2, 0, (3, 8)), (2, 3, 2, 1, (3, 7, 6)), (2, 2, 2, 0, (2, 5, 5)),
     (3, 2, 2, 0, (2, 4, 4, 4))],
)
def test_max_pool_indices_and_unpool(nd, kernel, stride, padding, shape, tmp_path):
    proto = runs_like_wally(PoolUnpool(nd, kernel, stride, padding), shape, tmp_path)
    assert {"MaxPool", "Mod", "ScatterElements"} <= set(op_types(proto))


def test_unpool_with_foreign_indices_is_refused(tmp_path):
    indices = F.max_pool2d(wally.randn(2, 1, 4, 4), 2, return_indices=True)[1]
    model = Lambda(lambda x: F.max_unpool2d(x, indices, 2))
    with pytest.raises(UnsupportedOperatorError, match="indices do not come from a max pooling"):
        export(model, np.zeros((2, 1, 2, 2), np.float32), tmp_path / "m.onnx")
