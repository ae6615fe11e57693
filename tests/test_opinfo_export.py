"""ONNX export and summary costs of the nodes added for PyTorch's OpInfo samples: ``clamp``
with tensor bounds (ClampTensor) and ``div`` with a rounding mode (DivRounding)."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import nn
from wally.analysis import summary

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from wally.onnx import export  # noqa: E402


class Bounded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("lo", wally.tensor([-0.5, 0.0, -1.0]))
        self.hi = nn.Parameter(wally.tensor([0.5, 1.0, 0.2]))

    def forward(self, x):
        both = wally.clamp(x, self.lo, self.hi)
        upper = wally.clamp(x, max=self.hi)
        lower = x.clamp(min=self.lo)
        floor = x.div(0.7, rounding_mode="floor")
        trunc = wally.div(x, self.hi, rounding_mode="trunc")
        return both + upper + lower + floor + trunc


def test_tensor_clamp_and_rounding_div_export_to_onnx(tmp_path):
    model = Bounded()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3)) * 3).astype(np.float32)
    path = tmp_path / "m.onnx"
    export(model, x, path)
    onnx.checker.check_model(str(path), full_check=True)
    types = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Max", "Min", "Floor", "Sign", "Abs", "Div"} <= set(types)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (rng.standard_normal((5, 3)) * 3).astype(np.float32)  # another batch size
    got = session.run(None, {"input": x})[0]
    with wally.no_grad():
        expected = model(wally.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_summary_counts_the_new_nodes():
    (row,) = [r for r in summary(Bounded(), (3,)).layers if r.kind == "layer"]
    assert "ClampTensor: 2 FLOPs per element" in row.rule
    assert "DivRounding: 2 FLOPs per element" in row.rule
    n = 3  # output elements of every node
    assert row.flops == 4 * n + 3 * 2 * n + 2 * 2 * n  # four adds, three clamps, two divs
