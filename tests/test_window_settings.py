"""Window settings are checked once (issue 12): a layer checks its settings at construction, a
functional form when called, and both share one record of the settings that passed
(:mod:`wally._windows`), so a layer's ``forward`` never checks them again, whatever the input
size.  The checks are counted by wrapping the functions that do them."""

from __future__ import annotations

import collections

import pytest

import wally
import wally.nn as nn
import wally.nn.functional as F
from wally import _windows
from wally.functional import conv as functional_conv
from wally.functional import pool as functional_pool

CHECKS = ("_check_pool", "_check_unpool", "_check_adaptive", "_check_conv", "_check_transposed",
          "_check_unfold")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> collections.Counter:
    """How many times each settings check ran, from an empty record of checked settings."""
    monkeypatch.setattr(_windows, "_SETTINGS", {})
    monkeypatch.setattr(functional_pool, "_CACHE", {})
    monkeypatch.setattr(functional_conv, "_GEOMETRY", {})
    calls: collections.Counter = collections.Counter()

    def counted(name, check):
        def run(*args):
            calls[name] += 1
            return check(*args)

        return run

    for name in CHECKS:
        monkeypatch.setattr(_windows, name, counted(name, getattr(_windows, name)))
    return calls


def _run(layer: nn.Module, shapes: list[tuple[int, ...]]) -> None:
    """Three calls per input shape, with and without a graph."""
    for shape in shapes:
        x = wally.randn(*shape, requires_grad=True)
        layer(x).sum().backward()
        layer(x)
        with wally.no_grad():
            layer(x)


LAYERS = {
    "MaxPool2d": (lambda: nn.MaxPool2d(3, 2, 1), "_check_pool",
                  [(2, 3, 8, 8), (2, 3, 9, 11), (3, 8, 8)]),
    "MaxPool1d dilated, ceil": (lambda: nn.MaxPool1d(2, 1, dilation=2, ceil_mode=True),
                                "_check_pool", [(2, 3, 7), (2, 3, 12)]),
    "AvgPool2d": (lambda: nn.AvgPool2d((2, 3), padding=1), "_check_pool",
                  [(2, 3, 8, 8), (1, 2, 5, 6)]),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, 2), "_check_pool", [(2, 3, 7), (2, 3, 10)]),
    "AvgPool3d": (lambda: nn.AvgPool3d(2), "_check_pool", [(1, 2, 4, 4, 4), (1, 2, 6, 4, 4)]),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((None, 3)), "_check_adaptive",
                          [(2, 3, 8, 8), (1, 2, 5, 7)]),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(4), "_check_adaptive",
                          [(2, 3, 8), (2, 3, 11)]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), "_check_conv",
               [(2, 3, 8, 8), (1, 3, 9, 7), (3, 6, 6)]),
    "Conv2d same, dilated": (lambda: nn.Conv2d(3, 4, 3, padding="same", dilation=2),
                             "_check_conv", [(2, 3, 8, 8), (1, 3, 9, 7)]),
    "Conv1d reflect": (lambda: nn.Conv1d(3, 4, 3, padding=2, padding_mode="reflect"),
                       "_check_conv", [(2, 3, 8), (2, 3, 11)]),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                   output_padding=1), "_check_transposed",
                        [(2, 3, 5, 5), (1, 3, 4, 6)]),
    "Conv3d": (lambda: nn.Conv3d(2, 2, 2), "_check_conv", [(1, 2, 4, 4, 4), (1, 2, 3, 5, 4)]),
    "P4ConvZ2": (lambda: nn.P4ConvZ2(3, 2, 3, stride=2, padding=1), "_check_conv",
                 [(2, 3, 8, 8), (1, 3, 9, 7)]),
    "P4ConvP4 dilated": (lambda: nn.P4ConvP4(3, 2, 3, padding=(1, 2), dilation=2),
                         "_check_conv", [(2, 12, 8, 8), (1, 12, 9, 7)]),
}


@pytest.mark.parametrize("name", LAYERS)
def test_a_layer_checks_its_settings_at_construction_and_never_in_forward(name, checks):
    build, check, shapes = LAYERS[name]
    layer = build()
    built = checks[check]
    assert built >= 1  # the layer did check at construction
    _run(layer, shapes)
    assert checks[check] == built, f"{name}'s forward checked its settings again"
    # A second layer with the same settings finds them checked, as does the functional form.
    _run(build(), shapes[:1])
    assert checks[check] == built


def test_max_unpool_layer_checks_once(checks):
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2, padding=0)
    assert checks["_check_unpool"] >= 1
    built = dict(checks)
    for size in (4, 6, 8):
        x = wally.randn(1, 2, size, size, requires_grad=True)
        unpool(*pool(x)).sum().backward()
    assert dict(checks) == built


def test_a_function_checks_each_settings_tuple_once(checks):
    x, w = wally.randn(1, 2, 8, 8), wally.randn(3, 2, 3, 3)
    for size in (8, 9, 10):
        x = wally.randn(1, 2, size, size)
        F.max_pool2d(x, 3, 2, 1)
        F.conv2d(x, w, None, 2, 1)
    assert checks["_check_pool"] == 1 and checks["_check_conv"] == 1
    F.max_pool2d(x, 3, 2, 0)  # other settings: checked once more
    F.conv2d(x, w, None, 1, 1)
    assert checks["_check_pool"] == 2 and checks["_check_conv"] == 2


def test_unfold_and_fold_check_each_settings_tuple_once(checks):
    for size in (6, 7, 9):
        x = wally.randn(2, 3, size, size, requires_grad=True)
        cols = F.unfold(x, 3, dilation=1, padding=1, stride=2)
        F.fold(cols, (size, size), 3, dilation=1, padding=1, stride=2).sum().backward()
    assert checks["_check_unfold"] == 1  # fold's settings are unfold's: one entry
    F.unfold(x, 2)
    assert checks["_check_unfold"] == 2
    for _ in range(2):  # a bad tuple is checked (and refused) every time
        with pytest.raises(ValueError, match="unfold: padding"):
            F.unfold(x, 3, padding=-1)
    assert checks["_check_unfold"] == 4


def test_the_record_tells_ints_from_bools_and_floats(checks):
    x = wally.randn(1, 2, 8, 8)
    F.max_pool2d(x, 2, 1)
    for bad in (True, 1.0):
        with pytest.raises(TypeError, match="max_pool2d: expected stride"):
            F.max_pool2d(x, 2, bad)
        with pytest.raises(TypeError, match="MaxPool2d: expected stride"):
            nn.MaxPool2d(2, bad)


def test_a_failed_check_is_not_remembered_and_names_each_caller(checks):
    x = wally.randn(1, 2, 8, 8)
    for _ in range(2):
        with pytest.raises(ValueError, match="MaxPool2d: padding should be at most half"):
            nn.MaxPool2d(2, padding=2)
        with pytest.raises(ValueError, match="max_pool2d: padding should be at most half"):
            F.max_pool2d(x, 2, padding=2)
        with pytest.raises(ValueError, match="Conv2d: padding='same' is not supported for "
                                             "strided"):
            nn.Conv2d(2, 2, 3, stride=2, padding="same")
        with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for "
                                             "strided"):
            F.conv2d(x, wally.randn(2, 2, 3, 3), stride=2, padding="same")
    assert checks["_check_pool"] == 4 and checks["_check_conv"] == 4


def test_the_geometry_module_docstring_examples_run():
    import doctest

    result = doctest.testmod(_windows, extraglobs={"xp": _windows.xp})
    assert result.attempted > 0 and result.failed == 0
