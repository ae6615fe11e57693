"""ONNX export of the lengths path: a series model called as ``model(x, lengths)`` on a padded
batch exports with ``lengths`` as a second graph input, its masks computed in the graph, and
the file gives every series the logits wally gives it, at any batch size and any lengths."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import nn
from wally.data import pad_collate
from wally.models import get_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def padded(lengths, channels=3, seed=0):
    wally.manual_seed(seed)
    (x, given), _ = pad_collate([(wally.randn(channels, n), 0) for n in lengths])
    return x, given


def export_lengths(model, path, lengths=(7, 20, 12)):
    x, given = padded(lengths)
    wally.onnx.export(model, (x, given), str(path), input_names=("input", "lengths"))
    return ort.InferenceSession(str(path))


@pytest.mark.parametrize("name", ["fcn1d", "tcn"])
def test_a_series_model_exports_with_its_lengths(name, tmp_path):
    model = get_model(name, in_channels=3, num_classes=4, input_size=20).eval()
    session = export_lengths(model, tmp_path / f"{name}.onnx")
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    assert inputs == [("input", "tensor(float)", ["N", 3, 20]),
                      ("lengths", "tensor(int64)", ["N"])]
    x, lengths = padded((20, 1, 9, 3, 15), seed=1)  # another batch size, other lengths
    got = session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})[0]
    with wally.no_grad():
        np.testing.assert_allclose(got, model(x, lengths).numpy(), rtol=1e-4, atol=1e-5)
        for n, length in enumerate(lengths.tolist()):  # as the series alone, unpadded
            alone = model(x[n:n + 1, :, :length]).numpy()[0]
            np.testing.assert_allclose(got[n], alone, rtol=1e-4, atol=1e-4)
    full = session.run(None, {"input": x.numpy(), "lengths": np.full(5, 20, np.int64)})[0]
    np.testing.assert_allclose(full, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_masked_pooling_exports_with_lengths(tmp_path):
    class Pool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaskedGlobalAvgPool1d()

        def forward(self, x, lengths):
            return self.pool(x, lengths)

    session = export_lengths(Pool(), tmp_path / "pool.onnx", lengths=(4, 6))
    x, lengths = padded((6, 2, 5))
    got = session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})[0]
    want = np.stack([x.numpy()[n, :, :k].mean(axis=1) for n, k in enumerate([6, 2, 5])])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_several_inputs_need_one_name_each_and_must_be_read(tmp_path):
    model = get_model("fcn1d", in_channels=3, num_classes=4).eval()
    x, lengths = padded((5, 8))
    with pytest.raises(ValueError, match=r"the model takes 2 inputs \(example_input\), got 1 "
                                         r"input_names \['input'\]: give one name per input, "
                                         r"e.g. input_names=\('input', 'lengths'\)"):
        wally.onnx.export(model, (x, lengths), str(tmp_path / "a.onnx"))
    with pytest.raises(ValueError, match=r"example_input is an empty tuple"):
        wally.onnx.export(model, (), str(tmp_path / "b.onnx"))

    class Ignores(nn.Module):
        def forward(self, x, lengths):
            return x.mean(dim=-1)

    with pytest.raises(ValueError, match=r"the integer example input 'lengths' \(int64, shape "
                                         r"\(2,\)\) reaches no operation"):
        wally.onnx.export(Ignores(), (x, lengths), str(tmp_path / "c.onnx"),
                          input_names=("input", "lengths"))
    assert not list(tmp_path.iterdir())  # nothing written
