"""Translation and rotation equivariance, layer by layer: exact where the note says it is,
measured where strides and pooling break it."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import models, nn
from wally.analysis import equivariance, rotate, shift, symmetrize_kernels


def smooth(shape, seed=0):
    """Blurred noise: small rotations by interpolation make sense on it."""
    image = np.random.default_rng(seed).standard_normal(shape)
    for _ in range(4):
        for axis in range(2, len(shape)):
            image = (image + np.roll(image, 1, axis) + np.roll(image, -1, axis)) / 3
    return (image / image.std()).astype(np.float32)


def stride_one_net():
    return nn.Sequential(nn.Conv2d(2, 4, 5, padding=2), nn.ReLU(),
                         nn.Conv2d(4, 3, 3, dilation=2), nn.Tanh(), nn.Conv2d(3, 3, (1, 3)))


def test_stride_one_convolutions_are_exactly_equivariant_in_the_interior():
    x = wally.randn(2, 2, 32, 32)
    report = equivariance(stride_one_net(), x, shifts=[1, 3, (2, -5), (-4, 0)])
    assert [r.name for r in report.rows] == ["0", "1", "2", "3", "4"]
    for row in report.rows:
        assert row.kind == "equivariance" and row.jump == (1, 1)
        for label, error in row.errors.items():
            assert error is not None and error < 1e-6, (row.name, label, error)
            assert row.aligned[label]


def test_borders_and_wraparound_break_it_outside_the_interior():
    x = wally.randn(1, 2, 24, 24)
    report = equivariance(stride_one_net(), x, shifts=[2], interior=False)
    assert report.row("4").errors["shift 2"] > 1e-2


def test_strides_and_pooling_break_equivariance_except_for_multiples_of_the_jump():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 3, stride=2), nn.AvgPool2d(2))
    report = equivariance(net, wally.randn(2, 1, 48, 48), shifts=[1, 2, 4, 8])
    pool, strided, avg = report.row("2"), report.row("3"), report.row("4")
    assert report.row("0").errors["shift 1"] < 1e-6
    assert (pool.jump, strided.jump, avg.jump) == ((2, 2), (4, 4), (8, 8))
    assert pool.errors["shift 1"] > 1e-2 and not pool.aligned["shift 1"]
    assert pool.errors["shift 2"] < 1e-6 and pool.aligned["shift 2"]
    assert strided.errors["shift 2"] > 1e-2 and strided.errors["shift 4"] < 1e-6
    assert avg.errors["shift 4"] > 1e-2 and avg.errors["shift 8"] < 1e-6


def test_outputs_without_spatial_axes_measure_invariance():
    report = equivariance(models.lenet(), wally.randn(2, 1, 28, 28), shifts=[1, 4])
    logits = report.row("11")
    assert logits.kind == "invariance" and logits.jump is None
    assert 0 < logits.errors["shift 1"] < 1
    assert report.row("5").errors["shift 4"] < 1e-6   # the last pooling: jump 4
    assert report.row("5").errors["shift 1"] > 1e-3


def test_quarter_turns_are_exact_for_rotation_symmetric_kernels():
    x = wally.randn(2, 1, 20, 20)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 5, padding=2),
                        nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
    learned = equivariance(net, x, shifts=[], rotations=[90, 180, 270], interior=False)
    assert all(learned.row("0").errors[t] > 1e-2 for t in learned.transforms)
    symmetrize_kernels(net)
    for k in range(4):  # each kernel is its own quarter turn now
        w = net[0].weight.detach().numpy()
        assert np.allclose(np.rot90(w, k, axes=(-2, -1)), w)
    exact = equivariance(net, x, shifts=[], rotations=[90, 180, 270], interior=False)
    for row in exact.rows:
        for label, error in row.errors.items():
            assert error < 1e-5, (row.name, label, error)


def test_a_strided_grid_that_does_not_land_on_itself_is_flagged():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2))
    symmetrize_kernels(net)
    report = equivariance(net, wally.randn(1, 1, 16, 16), shifts=[], rotations=[180])
    # 7 windows at 0, 2, ..., 12 cover pixels 0..14 of 0..15: turned, they start at pixel 1.
    assert not report.row("0").aligned["rot 180°"]
    assert report.row("0").errors["rot 180°"] > 1e-2


def test_small_angles_are_approximate_and_better_for_symmetric_kernels():
    x = smooth((2, 1, 48, 48))
    net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2))
    general = equivariance(net, x, shifts=[], angles=[3.0, 10.0]).row("0").errors
    symmetrize_kernels(net)
    symmetric = equivariance(net, x, shifts=[], angles=[3.0, 10.0]).row("0").errors
    for label in ("rotate 3°", "rotate 10°"):
        assert symmetric[label] < 0.05
        assert symmetric[label] < general[label] / 2


def test_rotate_and_shift_helpers():
    a = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
    for k in range(4):
        assert np.allclose(rotate(a, 90 * k), np.rot90(a, k, axes=(-2, -1)))
    assert np.allclose(rotate(a, 0), a)
    b = smooth((1, 1, 40, 40))
    back = np.abs(rotate(rotate(b, 7.0), -7.0) - b)[..., 12:28, 12:28].mean()
    further = np.abs(rotate(rotate(b, 7.0), 7.0) - b)[..., 12:28, 12:28].mean()
    assert back < 0.1 and back < further / 4
    assert np.array_equal(shift(a, (1, -2))[..., 1:, :7], a[..., :-1, 2:])


def test_report_outputs_and_errors():
    report = equivariance(models.lenet(), wally.randn(1, 1, 28, 28), shifts=[1, (0, 2)],
                          rotations=[90], angles=[5])
    assert report.transforms == ["shift 1", "shift (0,2)", "rot 90°", "rotate 5°"]
    text = str(report)
    assert "shift (0,2)" in text and "5: AvgPool2d" in text and "*" in text
    data = report.to_dict()
    assert data["rows"][0]["errors"]["shift 1"] == report.rows[0].errors["shift 1"]
    with pytest.raises(ValueError, match="multiples of 90"):
        equivariance(models.lenet(), wally.randn(1, 1, 28, 28), rotations=[45])
    with pytest.raises(ValueError, match="batch"):
        equivariance(models.lenet(), wally.randn(1, 28, 28))
    with pytest.raises(ValueError, match="offsets"):
        equivariance(models.lenet(), wally.randn(1, 1, 28, 28), shifts=[(1, 2, 3)])


def test_one_dimensional_models_and_restored_modes():
    net = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.BatchNorm1d(2), nn.ReLU(),
                        nn.MaxPool1d(2)).train()
    report = equivariance(net, wally.randn(2, 1, 40), shifts=[1, 2])
    assert report.row("0").errors["shift 1"] < 1e-6
    assert report.row("3").errors["shift 1"] > 1e-2 and report.row("3").errors["shift 2"] < 1e-6
    assert all(m.training for m in net.modules())
