"""layersB's layers in ``wally.summary`` (MACs, FLOPs, receptive fields) and in ONNX export
(run in onnxruntime against wally's own output)."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import nn
from wally.analysis.cost import module_cost
from wally.analysis.receptive_field import probe_receptive_field

# ----- summary: costs ----------------------------------------------------------------------------
COSTS = [  # (layer, input (C, *spatial), MACs, FLOPs) for a batch of 2
    (nn.LayerNorm([5, 6]), (3, 5, 6), 180, 7 * 180),
    (nn.LayerNorm(6, elementwise_affine=False), (3, 5, 6), 0, 5 * 180),
    (nn.LayerNorm(6, bias=False), (3, 5, 6), 180, 6 * 180),
    (nn.GroupNorm(2, 4), (4, 3, 3), 72, 7 * 72),
    (nn.GroupNorm(2, 4, affine=False), (4, 3, 3), 0, 5 * 72),
    (nn.InstanceNorm2d(4), (4, 3, 3), 0, 5 * 72),
    (nn.InstanceNorm2d(4, affine=True), (4, 3, 3), 72, 7 * 72),
    (nn.LocalResponseNorm(5), (4, 3, 3), 0, 9 * 72),
    (nn.ELU(), (4, 3), 0, 4 * 24), (nn.SELU(), (4, 3), 0, 5 * 24),
    (nn.CELU(), (4, 3), 0, 5 * 24), (nn.SiLU(), (4, 3), 0, 4 * 24),
    (nn.Mish(), (4, 3), 0, 5 * 24), (nn.Hardswish(), (4, 3), 0, 5 * 24),
    (nn.Hardsigmoid(), (4, 3), 0, 4 * 24), (nn.Hardtanh(), (4, 3), 0, 2 * 24),
    (nn.ReLU6(), (4, 3), 0, 2 * 24), (nn.Softsign(), (4, 3), 0, 3 * 24),
    (nn.LogSigmoid(), (4, 3), 0, 5 * 24), (nn.PReLU(4), (4, 3), 0, 2 * 24),
    (nn.GLU(1), (4, 3), 0, 4 * 12), (nn.Softmin(1), (4, 3), 0, 6 * 24),
    (nn.Threshold(0.1, 0.0), (4, 3), 0, 24),
    (nn.Dropout2d(0.5), (4, 3, 3), 0, 0),  # the identity in evaluation
    (nn.AlphaDropout(0.5), (4, 3), 0, 0),
]


@pytest.mark.parametrize(("layer", "shape", "macs", "flops"), COSTS,
                         ids=[type(c[0]).__name__ for c in COSTS])
def test_summary_costs(layer, shape, macs, flops):
    row = wally.summary(nn.Sequential(layer), (2, *shape)).layers[1]
    assert (row.macs, row.flops) == (macs, flops), row.rule


def test_summary_costs_in_training_and_as_functional_calls():
    class Net(nn.Module):
        def forward(self, x):
            x = nn.functional.group_norm(x, 2)
            x = nn.functional.local_response_norm(x, 3)
            return nn.functional.alpha_dropout(x, 0.5, training=True)

    row = wally.summary(Net(), (2, 4, 3, 3)).layers[0]  # the ops count in forward's row
    assert row.flops == 5 * 72 + 7 * 72 + 2 * 72
    assert "local response norm" in row.rule and "dropout: 2 FLOPs" in row.rule
    # The summary runs in evaluation; in training the dropout layers count their arithmetic.
    for layer, per in ((nn.Dropout1d(0.5), 1), (nn.FeatureAlphaDropout(0.5), 2),
                       (nn.Dropout3d(0.0), 0)):
        assert module_cost(layer.train(), (2, 4, 3), (2, 4, 3)).flops == per * 24


def test_embedding_costs_nothing():
    row = wally.summary(nn.Sequential(nn.Embedding(10, 4)),
                        input=wally.tensor([[1, 2, 3]])).layers[1]
    assert (row.macs, row.flops) == (0, 0)


# ----- summary: receptive fields -----------------------------------------------------------------
@pytest.mark.parametrize(("norm", "size"), [
    (nn.GroupNorm(2, 4), (8, 8)), (nn.InstanceNorm2d(4), (8, 8)),
    (nn.LayerNorm([4, 6, 6]), (8, 8)),
    (nn.LayerNorm(6), (3, 8)),  # over W only: H keeps the convolution's 3
])
def test_normalisation_over_the_plane_sees_the_whole_input(norm, size):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), norm, nn.Conv2d(4, 4, 1))
    rows = wally.summary(model, (1, 1, 8, 8)).layers
    assert rows[1].receptive_field.size == (3, 3)
    assert rows[2].receptive_field.size == size
    assert rows[3].receptive_field.size == size  # a 1x1 convolution adds nothing


@pytest.mark.parametrize("norm", [nn.GroupNorm(2, 4), nn.InstanceNorm2d(4), nn.LayerNorm(6),
                                  nn.LayerNorm([4, 6, 6]), nn.LocalResponseNorm(3)])
def test_the_rule_agrees_with_the_gradient_probe(norm):
    """The measured field (where the centre unit's input gradient is non-zero) is the rule's."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), norm, nn.Conv2d(4, 4, 1))
    field = wally.summary(model, (1, 1, 8, 8)).layers[-1].receptive_field
    centre = [(n - 1) // 2 for n in (6, 6)]
    expected = tuple(axis.box(0 if axis.jump == 0 else c) for axis, c in zip(field.axes, centre))
    assert probe_receptive_field(model, (1, 8, 8)) == expected


def test_pointwise_layers_keep_the_field():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LocalResponseNorm(3), nn.Hardswish(),
                          nn.PReLU(4), nn.Dropout2d())
    rows = wally.summary(model, (1, 1, 8, 8)).layers
    assert all(r.receptive_field.size == (3, 3) for r in rows[1:])


# ----- ONNX ---------------------------------------------------------------------------------------
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from wally.onnx import UnsupportedOperatorError, export  # noqa: E402


def _run(model, shape, tmp_path, opset=17):
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.array[...] = rng.uniform(0.5, 1.5, p.shape)
    path = tmp_path / "model.onnx"
    export(model, rng.standard_normal((2, *shape)).astype(np.float32), path, opset_version=opset)
    onnx.checker.check_model(str(path), full_check=True)
    x = rng.standard_normal((3, *shape)).astype(np.float32) * 2
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    model.eval()
    with wally.no_grad():
        expected = model(wally.tensor(x)).array
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6 * scale)
    return onnx.load(str(path))


EXPORTS = [
    (nn.LayerNorm(6), (4, 6), 17), (nn.LayerNorm([4, 6], bias=False), (4, 6), 17),
    (nn.LayerNorm(6, elementwise_affine=False), (3, 4, 6), 17),
    (nn.GroupNorm(2, 4), (4, 3, 3), 17), (nn.GroupNorm(4, 4, affine=False), (4, 5), 13),
    (nn.GroupNorm(1, 4, bias=False), (4, 2, 2, 2), 17),
    (nn.InstanceNorm2d(4), (4, 3, 3), 13), (nn.InstanceNorm1d(4, affine=True), (4, 5), 17),
    (nn.InstanceNorm2d(4, affine=True, track_running_stats=True), (4, 3, 3), 17),
    (nn.LocalResponseNorm(5, alpha=0.5, beta=0.75, k=2.0), (7, 3, 3), 13),
    (nn.LocalResponseNorm(1), (3, 4), 13),
    (nn.ELU(0.7), (4, 5), 13), (nn.SELU(), (4, 5), 13), (nn.CELU(1.5), (4, 5), 13),
    (nn.CELU(1.0), (4, 5), 13), (nn.SiLU(), (4, 5), 13), (nn.Mish(), (4, 5), 17),
    (nn.Mish(), (4, 5), 18), (nn.Hardswish(), (4, 5), 14), (nn.Hardsigmoid(), (4, 5), 13),
    (nn.Hardtanh(-0.5, 1.5), (4, 5), 13), (nn.ReLU6(), (4, 5), 13), (nn.Softsign(), (4, 5), 13),
    (nn.LogSigmoid(), (4, 5), 13), (nn.PReLU(), (4, 5), 13), (nn.PReLU(4), (4, 3, 3), 13),
    (nn.GLU(1), (4, 5), 13), (nn.GLU(), (4, 6), 13), (nn.Softmin(1), (4, 5), 13),
    (nn.Threshold(0.2, -3.0), (4, 5), 13), (nn.Threshold(-0.3, 0.0), (4, 5), 13),
    (nn.Hardswish(), (4, 5), 13),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.SiLU(), nn.Dropout2d(),
                   nn.AlphaDropout()), (3, 6, 6), 17),
]


@pytest.mark.parametrize(("model", "shape", "opset"), EXPORTS,
                         ids=[f"{type(e[0]).__name__}-{i}" for i, e in enumerate(EXPORTS)])
def test_onnx_export_runs_like_wally(model, shape, opset, tmp_path):
    if isinstance(model, nn.InstanceNorm2d) and model.track_running_stats:
        model.running_mean.array[...] = [0.1, -0.2, 0.3, 0.0]
        model.running_var.array[...] = [0.5, 1.5, 2.0, 1.0]
    exported = _run(model, shape, tmp_path, opset)
    ops = {node.op_type for node in exported.graph.node}
    expected = {"Hardswish": "HardSwish" if opset >= 14 else "HardSigmoid",
                "LayerNorm": "LayerNormalization", "InstanceNorm2d": "InstanceNormalization",
                "GroupNorm": "InstanceNormalization", "LocalResponseNorm": "LRN",
                "SELU": "Selu", "PReLU": "PRelu", "Threshold": "Where"}.get(type(model).__name__)
    if isinstance(model, nn.Threshold) and model.value == 0:
        expected = "ThresholdedRelu"
    if isinstance(model, nn.InstanceNorm2d) and model.track_running_stats:
        expected = "BatchNormalization"  # evaluation with the running statistics
    assert expected is None or expected in ops, ops


def test_onnx_refusals(tmp_path):
    example = np.zeros((2, 4, 3), dtype=np.float32)
    with pytest.raises(UnsupportedOperatorError, match="LRN centres an even window"):
        export(nn.LocalResponseNorm(2), example, tmp_path / "a.onnx", opset_version=13)
    with pytest.raises(UnsupportedOperatorError, match="opset 17 or later"):
        export(nn.LayerNorm(3), example, tmp_path / "b.onnx", opset_version=13)
