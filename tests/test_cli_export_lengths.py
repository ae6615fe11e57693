"""``wally export --lengths``: a sequence model's file takes the lengths of a padded batch as a
second input, and gives each series in onnxruntime the logits wally gives it; a model that
takes no lengths (textcnn, an image model) is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally.cli import main
from wally.data import pad_collate
from wally.io import save_checkpoint
from wally.models import get_model

pytest.importorskip("safetensors", reason="checkpoints need safetensors: pip install safetensors")
pytest.importorskip("onnx", reason="pip install onnx")
ort = pytest.importorskip("onnxruntime", reason="pip install onnxruntime")


def checkpoint_of(tmp_path, name, **kwargs):
    wally.manual_seed(0)
    model = get_model(name, **kwargs).eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, extra={"dataset": "ucr/Fake"})
    return model, path


@pytest.mark.parametrize("name", ["fcn1d", "tcn"])
def test_export_with_lengths_runs_in_onnxruntime(name, tmp_path, capsys):
    model, path = checkpoint_of(tmp_path, name, in_channels=3, num_classes=4, input_size=20)
    onnx_path = tmp_path / f"{name}.onnx"
    assert main(["export", str(path), "--onnx", str(onnx_path), "--lengths"]) == 0
    assert "input 'input' of shape (N, 3, 20) and 'lengths' of shape (N,)" in \
        capsys.readouterr().out
    session = ort.InferenceSession(str(onnx_path))
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("input", "tensor(float)"), ("lengths", "tensor(int64)")]
    wally.manual_seed(1)
    (x, lengths), _ = pad_collate([(wally.randn(3, n), 0) for n in (20, 1, 9, 3, 15)])
    got = session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})[0]
    with wally.no_grad():
        for n, length in enumerate(lengths.tolist()):  # each series as if alone, unpadded
            alone = model(x[n:n + 1, :, :length]).numpy()[0]
            np.testing.assert_allclose(got[n], alone, rtol=1e-4, atol=1e-4)

    plain = tmp_path / f"{name}-plain.onnx"  # without the option: one input, as before
    assert main(["export", str(path), "--onnx", str(plain), "--batch-size", "2"]) == 0
    assert [i.name for i in ort.InferenceSession(str(plain)).get_inputs()] == ["input"]


@pytest.mark.parametrize("name, kwargs, message", [
    ("textcnn", {"vocab_size": 20, "num_classes": 3, "max_length": 16},
     "--lengths: textcnn takes no lengths: it reads the padding from its token ids"),
    ("lenet", {}, "--lengths: lenet takes one input (forward(x)), not (x, lengths)"),
])
def test_export_lengths_refused_for_a_model_without_them(name, kwargs, message, tmp_path,
                                                         capsys):
    _, path = checkpoint_of(tmp_path, name, **kwargs)
    out = tmp_path / "x.onnx"
    assert main(["export", str(path), "--onnx", str(out), "--lengths"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()
