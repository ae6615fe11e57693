"""TextCNN: the same logits and gradients as the same network in PyTorch, padding that changes
nothing, the zoo's registry, summary, ONNX export, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally.models import get_model, model_config, textcnn


def small(**kwargs):
    wally.manual_seed(0)
    return textcnn(vocab_size=12, num_classes=3, embedding_dim=5, kernel_sizes=(2, 3),
                   num_filters=4, **kwargs)


IDS = np.array([[3, 4, 5, 6, 0, 0], [7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 11], [0, 0, 0, 0, 0, 0]])


def torch_textcnn(torch, model, ids):
    """The same network written in PyTorch, with wally's weights: logits and the weights'
    gradients of their sum."""
    tnn, functional = torch.nn, torch.nn.functional
    state = {k: torch.tensor(v.numpy().astype(np.float64)) for k, v in model.state_dict().items()}
    embedding = tnn.Embedding(12, 5, padding_idx=0).double()
    convs = [tnn.Conv1d(5, 4, k, padding=k - 1).double() for k in (2, 3)]
    fc = tnn.Linear(8, 3).double()
    embedding.weight.data = state["embedding.weight"]
    for i, conv in enumerate(convs):
        conv.weight.data, conv.bias.data = state[f"convs.{i}.weight"], state[f"convs.{i}.bias"]
    fc.weight.data, fc.bias.data = state["fc.weight"], state["fc.bias"]
    x = torch.tensor(ids)
    lengths = (x != 0).sum(1).clamp(min=1)  # an empty text counts as one <pad>
    pooled = []
    for k, conv in zip((2, 3), convs):
        h = functional.relu(conv(embedding(x).transpose(1, 2)))
        valid = torch.arange(h.shape[2])[None, :] < (lengths + k - 1)[:, None]
        pooled.append(h.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2))
    logits = fc(torch.cat(pooled, dim=1))
    logits.sum().backward()
    grads = {"embedding.weight": embedding.weight.grad, "fc.weight": fc.weight.grad,
             **{f"convs.{i}.weight": c.weight.grad for i, c in enumerate(convs)}}
    return logits.detach().numpy(), {k: g.numpy() for k, g in grads.items()}


def make_padding_win(model):
    """Weights under which padding would win an unmasked max: real tokens pull every
    convolution below its bias, while a window of padding only gives relu(bias) = 1."""
    with wally.no_grad():
        model.embedding.weight.copy_(model.embedding.weight.abs() + 0.1)
        model.embedding.weight[0] = 0.0
        for conv in model.convs:
            conv.weight.copy_(-conv.weight.abs() - 0.01)
            conv.bias.fill_(1.0)


@pytest.mark.parametrize("padding_would_win", [False, True])
def test_matches_pytorch_values_and_gradients(torch, padding_would_win):
    model = small(dropout=0.0).double()
    if padding_would_win:
        make_padding_win(model)
    logits = model(wally.tensor(IDS))
    logits.sum().backward()
    expected, grads = torch_textcnn(torch, model, IDS)
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    for name, parameter in model.named_parameters():
        if name in grads:
            np.testing.assert_allclose(parameter.grad.numpy(), grads[name], rtol=1e-9,
                                       atol=1e-12, err_msg=name)


@pytest.mark.parametrize("padding_would_win", [False, True])
def test_padding_changes_nothing(padding_would_win):
    model = small().eval()
    if padding_would_win:
        make_padding_win(model)
    batch = model(wally.tensor(IDS)).detach().numpy()
    for row, ids in enumerate(IDS):
        alone = ids[:max(1, int((ids != 0).sum()))][None]
        np.testing.assert_allclose(model(wally.tensor(alone)).detach().numpy()[0], batch[row],
                                   rtol=1e-5, atol=1e-6)
        longer = np.concatenate([ids, np.zeros(9, dtype=ids.dtype)])[None]
        np.testing.assert_allclose(model(wally.tensor(longer)).detach().numpy()[0], batch[row],
                                   rtol=1e-5, atol=1e-6)


def test_registry_config_and_defaults():
    model = get_model("textcnn", vocab_size=40, num_classes=9)
    config = model_config(model)
    assert config == {"name": "textcnn", "kwargs": {
        "vocab_size": 40, "num_classes": 9, "embedding_dim": 64, "kernel_sizes": [3, 4, 5],
        "num_filters": 100, "dropout": 0.5, "max_length": 256}}
    rebuilt = get_model(**config)
    assert [k for k, _ in rebuilt.named_parameters()] == [k for k, _ in model.named_parameters()]
    assert sum(p.numel() for p in textcnn().parameters()) == 94_086
    assert model.input_size == (256,) and model.dropout.p == 0.5
    assert [c.kernel_size for c in model.convs] == [(3,), (4,), (5,)]


def test_summary_feeds_token_ids():
    result = wally.summary(small(max_length=30), verbose=0)
    names = [row.name for row in result.layers if row.kind == "layer"]
    assert names.count("pool") == 2 and "embedding" in names
    assert result.input_shape == [(1, 30)] and result.dtype == "int64"


def test_onnx_export_matches_onnxruntime(tmp_path):
    pytest.importorskip("onnx", reason="pip install onnx")
    ort = pytest.importorskip("onnxruntime", reason="pip install onnxruntime")
    from wally import onnx

    model = small().eval()
    onnx.export(model, wally.tensor(IDS), tmp_path / "t.onnx", dynamic_batch=True)
    session = ort.InferenceSession(str(tmp_path / "t.onnx"))
    other = np.array([[5, 5, 5, 0, 0, 0], [9, 8, 7, 6, 5, 4]])  # other padding, other batch
    for ids in (IDS, other):
        got = session.run(None, {session.get_inputs()[0].name: ids})[0]
        np.testing.assert_allclose(got, model(wally.tensor(ids)).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_max_over_time_lengths_export_refuses_free_batch(tmp_path):
    pytest.importorskip("onnx", reason="pip install onnx")
    from wally import nn, onnx
    from wally.onnx import UnsupportedOperatorError

    class Pool(nn.Module):
        def forward(self, x):
            return nn.functional.max_over_time(x, lengths=[2, 3])

    with pytest.raises(UnsupportedOperatorError, match="lengths are a constant"):
        onnx.export(Pool(), wally.zeros(2, 3, 4), tmp_path / "p.onnx", dynamic_batch=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vocab_size": 1}, "vocab_size must be at least 2"),
    ({"num_classes": 0}, "num_classes must be a positive integer"),
    ({"kernel_sizes": ()}, "kernel_sizes must be positive integers"),
    ({"kernel_sizes": (3, 0)}, "kernel_sizes must be positive integers"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        textcnn(**kwargs)


def test_bad_input():
    model = small()
    with pytest.raises(ValueError, match=r"TextCNN: expected token ids \(N, L\) of an integer"):
        model(wally.zeros(2, 6))
    with pytest.raises(ValueError, match="TextCNN: expected token ids"):
        model(wally.tensor(np.zeros((2, 3, 4), dtype=np.int64)))
    with pytest.raises((ValueError, IndexError), match="12"):
        model(wally.tensor(np.array([[3, 12]])))  # id 12 is past the 12-row embedding


def test_receptive_fields_in_tokens():
    from wally.analysis import receptive_field

    model = small(max_length=20)
    for name, k in (("convs.0", 2), ("convs.1", 3)):
        field = receptive_field(model, layer=name)
        # output t sees tokens t-k+1 .. t (k-1 steps of padding on the left)
        assert (field.size, field.jump, field.start) == ((k,), (1,), (-(k - 1),))
    assert receptive_field(model).is_global
    rows = {row.name: row for row in wally.summary(model, verbose=0).layers}
    assert rows["convs.1"].receptive_field.size == (3,)
