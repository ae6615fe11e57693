"""ONNX export of the issue-18 tensor ops (wally.onnx.tensorops), run in onnxruntime against
wally's own output, on a batch of another size than the traced one where the op allows."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wally
from wally import nn
from wally.tensor import Tensor

onnx = pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install onnx")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime")

from wally.onnx import UnsupportedOperatorError, export  # noqa: E402


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def runs_like_wally(fn, shape, tmp_path, *, batch=3, opset=18, dynamic_batch=True, scale=1.0):
    model = Lambda(fn)
    rng = np.random.default_rng(0)
    example = (rng.standard_normal((2, *shape)) * scale).astype(np.float32)
    path = tmp_path / "model.onnx"
    export(model, example, path, opset_version=opset, dynamic_batch=dynamic_batch)
    onnx.checker.check_model(str(path), full_check=True)
    x = example if not dynamic_batch else (
        rng.standard_normal((batch, *shape)) * scale).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    with wally.no_grad():
        expected = model(Tensor(x)).array
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5,
                               atol=1e-6 * max(1.0, float(np.abs(expected).max(initial=0))))
    return [node.op_type for node in onnx.load(str(path)).graph.node]


MASK = wally.tensor(np.array([[True, False, True, False], [False, False, True, True],
                              [True, True, False, False]]))
WEIGHT = wally.tensor(np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32))

DYNAMIC = [
    ("Sinh", lambda x: wally.sinh(x)),
    ("Cosh", lambda x: x.cosh()),
    ("Erf", lambda x: wally.erf(x)),
    ("Floor", lambda x: wally.floor(x * 3)),
    ("Ceil", lambda x: (x * 3).ceil()),
    ("Round", lambda x: wally.round(x * 3)),
    ("Round", lambda x: wally.round(x * 30, decimals=1)),
    ("Round", lambda x: wally.round(x * 300, decimals=-1)),
    ("Floor", lambda x: wally.trunc(x * 3)),
    ("CumSum", lambda x: wally.cumsum(x, -1)),
    ("ReduceProd", lambda x: wally.prod(x, 1)),
    ("ReduceProd", lambda x: x.prod(-1, keepdim=True)),
    ("ReduceLogSumExp", lambda x: wally.logsumexp(x, (1, 2))),
    ("ReduceL2", lambda x: wally.linalg.vector_norm(x, dim=-1)),
    ("ReduceL1", lambda x: x.norm(p=1, dim=1, keepdim=True)),
    ("Einsum", lambda x: wally.einsum("bij,jk->bik", x, WEIGHT)),
    ("Einsum", lambda x: wally.einsum("...ij->...ji", x)),
    ("TopK", lambda x: wally.sort(x, -1).values),
    ("TopK", lambda x: wally.sort(x, 1, descending=True).values),
    ("TopK", lambda x: wally.topk(x, 2).values),
    ("TopK", lambda x: x.topk(2, dim=1, largest=False).values),
    ("TopK", lambda x: wally.kthvalue(x, 3, 2, keepdim=True).values),
    ("Gather", lambda x: wally.index_select(x, 2, wally.tensor([3, 0, 0]))),
    ("Where", lambda x: wally.masked_fill(x, MASK, -1.5)),
    ("Where", lambda x: x.masked_fill(MASK[0], wally.tensor(2.0))),
    ("Trilu", lambda x: wally.tril(x)),
    ("Trilu", lambda x: x.triu(1)),
    ("Tile", lambda x: wally.tile(x, (1, 2, 1))),
    ("Tile", lambda x: x.repeat(1, 1, 3)),
]


@pytest.mark.parametrize("op_type, fn", DYNAMIC, ids=[f"{op}-{i}" for i, (op, _) in
                                                      enumerate(DYNAMIC)])
def test_dynamic_batch(op_type, fn, tmp_path):
    assert op_type in runs_like_wally(fn, (3, 4), tmp_path)


STATIC = [
    ("GatherElements", lambda x: wally.gather(x, 2, wally.tensor(
        np.random.default_rng(2).integers(0, 4, size=(2, 3, 5))))),
    ("ScatterElements", lambda x: wally.scatter(
        x, 1, wally.tensor([[[0, 1, 2, 0]], [[2, 0, 1, 1]]]), x.sum(1, keepdim=True) * 10)),
    ("ScatterElements", lambda x: x.scatter(2, wally.tensor([[[3], [0], [1]]] * 2), 7.0)),
    ("ScatterElements", lambda x: wally.scatter_add(x, 1, wally.tensor([[[0, 0, 1, 1]]] * 2),
                                                    x.mean(1, keepdim=True) * 2)),
    ("CumSum", lambda x: wally.cumsum(x, 0)),
    ("Einsum", lambda x: wally.einsum("bij,bij->j", x, x)),
]


@pytest.mark.parametrize("op_type, fn", STATIC, ids=[f"{op}-{i}" for i, (op, _) in
                                                     enumerate(STATIC)])
def test_static_batch(op_type, fn, tmp_path):
    assert op_type in runs_like_wally(fn, (3, 4), tmp_path, dynamic_batch=False)


@pytest.mark.parametrize("fn, message", [
    (lambda x: wally.gather(x, 2, wally.zeros(2, 3, 1, dtype=wally.int64)),
     "its index is a constant shaped by the example batch"),
    (lambda x: wally.cumsum(x, 0), "it accumulates along the batch axis"),
    (lambda x: wally.linalg.vector_norm(x, math.inf, -1), "ONNX reduces to the 1- and 2-norm"),
    (lambda x: wally.einsum("bij->jb", x), "the batch axis does not stay first"),
])
def test_refusals_name_the_reason(fn, message, tmp_path):
    with pytest.raises(UnsupportedOperatorError, match=message):
        runs_like_wally(fn, (3, 4), tmp_path)
