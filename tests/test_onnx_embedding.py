"""ONNX export of models with integer inputs: ``nn.Embedding`` (Gather) and ``F.one_hot``
(OneHot), run in onnxruntime against wally's own output, and what the exporter refuses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn
from wally.nn import functional as F

onnx = pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install onnx")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install onnxruntime")

from wally.onnx import UnsupportedOperatorError, export  # noqa: E402


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _wally(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with wally.no_grad():
        return model(wally.tensor(x)).numpy()


def _input_type(path) -> tuple[int, list]:
    graph = onnx.load(str(path)).graph
    tensor = graph.input[0].type.tensor_type
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return tensor.elem_type, dims


class TextCNN(nn.Module):
    """Embedding -> permute -> Conv1d -> ReLU -> AdaptiveMaxPool1d -> Linear."""

    def __init__(self, vocab: int, dim: int, channels: int, kernel: int, classes: int,
                 padding_idx: int | None = None, embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.emb = embedding or nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.conv = nn.Conv1d(self.emb.embedding_dim, channels, kernel, padding=1)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        h = self.emb(x).permute(0, 2, 1)
        h = self.pool(F.relu(self.conv(h)))
        return self.fc(h.flatten(1))


ELEM = {np.int64: onnx.TensorProto.INT64, np.int32: onnx.TensorProto.INT32}


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_text_cnn_dynamic_batch(tmp_path, dtype):
    rng = np.random.default_rng(0)
    model = TextCNN(30, 8, 5, 3, 4, padding_idx=0)
    example = rng.integers(0, 30, (2, 9)).astype(dtype)
    path = tmp_path / "text.onnx"
    export(model, wally.tensor(example), path)
    onnx.checker.check_model(str(path), full_check=True)
    assert _input_type(path) == (ELEM[dtype], ["N", 9])
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops[0] == "Gather" and "Conv" in ops
    assert model.training  # the mode is restored
    session = _session(path)
    for batch in (1, 5):
        x = rng.integers(0, 30, (batch, 9)).astype(dtype)
        x[0, :3] = 0  # the padding row is read as it is (zero)
        got = session.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, _wally(model, x), rtol=1e-5, atol=1e-6)


def test_text_cnn_static_batch_and_frozen_table(tmp_path):
    rng = np.random.default_rng(1)
    table = wally.tensor(rng.normal(size=(12, 6)).astype(np.float32))
    model = TextCNN(12, 6, 4, 3, 2, embedding=nn.Embedding.from_pretrained(table))
    assert not model.emb.weight.requires_grad  # a frozen table is still a recorded lookup
    x = rng.integers(0, 12, (3, 7))
    path = tmp_path / "static.onnx"
    export(model, wally.tensor(x), path, dynamic_batch=False, input_names=["ids"],
           output_names=["logits"])
    assert _input_type(path) == (onnx.TensorProto.INT64, [3, 7])
    init = {t.name for t in onnx.load(str(path)).graph.initializer}
    assert "emb.weight" in init
    got = _session(path).run(None, {"ids": x})[0]
    np.testing.assert_allclose(got, _wally(model, x), rtol=1e-5, atol=1e-6)
    assert not model.emb.weight.requires_grad
    assert not wally.autograd._state.tracing


@settings(max_examples=20, deadline=None)
@given(vocab=st.integers(1, 9), dim=st.integers(1, 5), shape=st.sampled_from(
    [(1,), (4,), (2, 3), (3, 1, 2)]), padding=st.sampled_from([None, 0, -1]),
    dtype=st.sampled_from([np.int64, np.int32]), dynamic=st.booleans(),
    seed=st.integers(0, 2**16))
def test_embedding_grid(tmp_path_factory, vocab, dim, shape, padding, dtype, dynamic, seed):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Embedding(vocab, dim, padding_idx=padding))
    example = rng.integers(0, vocab, shape).astype(dtype)
    path = tmp_path_factory.mktemp("grid") / "emb.onnx"
    export(model, wally.tensor(example), path, dynamic_batch=dynamic)
    x = rng.integers(0, vocab, ((shape[0] + 2,) if dynamic else (shape[0],)) + shape[1:])
    x = x.astype(dtype)
    got = _session(path).run(None, {"input": x})[0]
    expected = _wally(model, x)
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # a lookup: exact


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("num_classes", [1, 5])
def test_one_hot(tmp_path, dtype, num_classes):
    import torch

    class Codes(nn.Module):
        def forward(self, x):
            return F.one_hot(x, num_classes)

    rng = np.random.default_rng(num_classes)
    path = tmp_path / "onehot.onnx"
    export(Codes(), wally.tensor(rng.integers(0, num_classes, (2, 3)).astype(dtype)), path)
    x = rng.integers(0, num_classes, (4, 3)).astype(dtype)
    got = _session(path).run(None, {"input": x})[0]
    expected = torch.nn.functional.one_hot(torch.from_numpy(x.astype(np.int64)), num_classes)
    assert got.dtype == np.int64  # int64, as torch's
    np.testing.assert_array_equal(got, expected.numpy())
    np.testing.assert_array_equal(got, _wally(Codes(), x))


def test_one_hot_then_linear(tmp_path):
    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            return self.fc(F.one_hot(x, 6).float().sum(1))

    model = Bag()
    rng = np.random.default_rng(3)
    path = tmp_path / "bag.onnx"
    export(model, wally.tensor(rng.integers(0, 6, (2, 4))), path)
    x = rng.integers(0, 6, (5, 4))
    got = _session(path).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _wally(model, x), rtol=1e-5, atol=1e-6)


def test_one_hot_is_still_plain_int64():
    y = F.one_hot(wally.tensor([0, 2, 1]), 3)
    assert y.dtype == wally.int64 and y.grad_fn is None and not y.requires_grad
    assert y.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


# ----- refusals -----------------------------------------------------------------------------
def test_float_model_given_integer_input_is_refused(tmp_path):
    model = nn.Sequential(nn.Conv1d(2, 3, 3))
    path = tmp_path / "bad.onnx"
    with pytest.raises(TypeError, match=r"Conv1d.*expected a wally.float32 input.*int64"):
        export(model, wally.tensor(np.ones((1, 2, 5), dtype=np.int64)), path)
    assert not path.exists()
    assert not wally.autograd._state.tracing


def test_integer_arithmetic_into_float_is_cast_first(tmp_path):
    class Shift(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(wally.tensor([0.5, -1.0, 2.0]))

        def forward(self, x):
            return (x + self.bias) * 0.5

    model = Shift()
    path = tmp_path / "shift.onnx"
    export(model, wally.tensor(np.ones((2, 3), dtype=np.int64)), path)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops[0] == "Cast"  # wally's own promotion is a recorded Cast
    x = np.arange(12).reshape(4, 3)
    got = _session(path).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _wally(model, x), rtol=1e-6)
    np.testing.assert_allclose(got, (x + np.array([0.5, -1.0, 2.0])) * 0.5, rtol=1e-6)


def test_a_node_promoting_integers_itself_is_refused(tmp_path):
    class Promote(wally.autograd.Function):  # an op that promotes inside its forward
        def forward(self, x):
            return x.astype(np.float32) * 0.5

        def backward(self, gy):
            return None

    class Half(nn.Module):
        def forward(self, x):
            return Promote()(x)

    with pytest.raises(UnsupportedOperatorError,
                       match=r"Promote .*integer operand 0 \(int64\) into a float32 result.*"
                             r"float\(\)"):
        export(Half(), wally.tensor(np.ones((2, 3), dtype=np.int64)), tmp_path / "m.onnx")


def test_max_norm_is_refused(tmp_path):
    model = TextCNN(10, 4, 3, 3, 2, embedding=nn.Embedding(10, 4, max_norm=1.0))
    with pytest.raises(UnsupportedOperatorError,
                       match=r"Embedding in module 'emb' \(Embedding\).*max_norm=1.0"):
        export(model, wally.tensor(np.ones((1, 5), dtype=np.int64)), tmp_path / "m.onnx")


def test_integer_input_the_graph_never_reads_is_refused(tmp_path):
    class Ignore(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(wally.ones(2))

        def forward(self, x):
            return self.w * 2.0

    with pytest.raises(ValueError, match=r"integer example input \(int64, shape \(1, 2\)\) "
                                         r"reaches no operation"):
        export(Ignore(), wally.tensor([[1, 2]]), tmp_path / "m.onnx", dynamic_batch=False)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.bool_])
def test_other_input_dtypes_are_refused(tmp_path, dtype):
    model = nn.Sequential(nn.Embedding(4, 2))
    with pytest.raises(TypeError, match=rf"integer \(int64, int32\) example input, got dtype "
                                        rf"{np.dtype(dtype)}"):
        export(model, wally.tensor(np.zeros((1, 2), dtype=dtype)), tmp_path / "m.onnx")
