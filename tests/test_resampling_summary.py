"""wally.summary for the geometry layers: transposed convolutions, interpolation, pixel and
channel shuffles, unpooling: their MACs/FLOPs rules and receptive fields (against the probe)."""

from __future__ import annotations

import itertools

import pytest

import wally
from wally import nn
from wally.analysis import summary
from wally.analysis.receptive_field import probe_receptive_field
from wally.nn import functional as F


def _rows(model, input_size, batch_size=1):
    result = summary(model, (batch_size, *input_size))
    return {row.name: row for row in result.layers if row.kind == "layer"}, result


def test_conv_transpose_macs_per_input_pixel():
    model = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2))
    rows, _ = _rows(model, (4, 5, 7), batch_size=2)
    # each of 2·4·5·7 input values times a 3×3 kernel times 6/2 output channels
    assert rows["0"].macs == 2 * 4 * 5 * 7 * 9 * 3
    assert rows["0"].flops == 2 * rows["0"].macs + 2 * 6 * 9 * 13  # + bias per output
    assert "conv transpose" in rows["0"].rule


def test_conv_transpose_3d_and_functional():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(wally.randn(3, 2, 2, 2, 2))

        def forward(self, x):
            return F.conv_transpose3d(x, self.weight, stride=2)

    rows, _ = _rows(nn.Sequential(Up()), (3, 2, 3, 4))
    assert rows["0"].macs == 3 * 2 * 3 * 4 * 8 * 2
    assert rows["0"].flops == 2 * rows["0"].macs
    layer = nn.ConvTranspose3d(3, 4, 2, stride=2)
    rows, _ = _rows(nn.Sequential(layer), (3, 2, 3, 4))
    assert rows["0"].macs == 3 * 2 * 3 * 4 * 8 * 4


@pytest.mark.parametrize(
    "mode, taps",
    [("nearest", 0), ("nearest-exact", 0), ("bilinear", 4), ("bicubic", 16)],
)
def test_upsample_flops(mode, taps):
    rows, _ = _rows(nn.Sequential(nn.Upsample(scale_factor=2, mode=mode)), (3, 4, 5))
    outputs = 3 * 8 * 10
    assert rows["0"].macs == taps * outputs
    assert rows["0"].flops == 2 * taps * outputs
    assert mode in rows["0"].rule


def test_functional_interpolate_trilinear_and_area():
    class Resize(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(4, 4, 4), mode="trilinear")

    rows, _ = _rows(nn.Sequential(Resize()), (2, 2, 2, 2))
    assert rows["0"].macs == 2 * 64 * 8
    rows, _ = _rows(nn.Sequential(nn.Upsample(size=(2, 2), mode="area")), (1, 4, 4))
    assert rows["0"].flops == 16  # each of 4 outputs sums its 2×2 window


def test_antialiased_interpolation_counts_its_filter_taps():
    class Down(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(2, 3), mode="bilinear", antialias=True)

    rows, _ = _rows(nn.Sequential(Down()), (1, 8, 9))
    # the widest window per axis, as computed: rows scale 4, support ±4 around centres 2 and
    # 6 → [0, 6) and [2, 8); columns scale 3, support ±3 → at most [2, 8)
    assert rows["0"].macs == 2 * 3 * 6 * 6
    field = rows["0"].receptive_field
    assert not field.exact and field.box((0, 0)) == ((0, 7), (0, 8))


def test_rearrangements_cost_nothing():
    model = nn.Sequential(nn.PixelUnshuffle(2), nn.ChannelShuffle(2), nn.PixelShuffle(2))
    rows, _ = _rows(model, (2, 4, 6))
    for name in ("0", "1", "2"):
        assert rows[name].macs == rows[name].flops == 0 and rows[name].rule


class _PoolUnpool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x):
        return self.unpool(*self.pool(x))


def test_unpool_costs_nothing():
    rows, _ = _rows(_PoolUnpool(), (1, 6, 6))
    assert rows["unpool"].flops == 0


# ----- receptive fields --------------------------------------------------------------------
MODELS = {
    "encoder-decoder": (lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ConvTranspose2d(2, 1, 4, stride=2,
                                                                       padding=1)), (6, 6)),
    "stride-1 transposed": (lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ConvTranspose2d(2, 1, 3, padding=1)),
        (7, 7)),  # = a 3×3 convolution with padding 1 after the first: 3 + 2·2
    "transposed first": (lambda: nn.Sequential(nn.ConvTranspose2d(1, 1, 3, stride=2)), None),
    "nearest up": (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, stride=4),
                                         nn.Upsample(scale_factor=2)), None),
    "bilinear up": (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, stride=4),
                                          nn.Upsample(scale_factor=2, mode="bilinear")),
                    (11, 11)),  # 3 + 4·(3/4 + 5/4)
    "bicubic up": (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, stride=4),
                                         nn.Upsample(scale_factor=2, mode="bicubic")), None),
    "nearest down": (lambda: nn.Sequential(nn.Upsample(scale_factor=0.5)), (1, 1)),
    "bilinear down": (lambda: nn.Sequential(nn.Upsample(scale_factor=1 / 3, mode="bilinear")),
                      None),
    "pixel shuffle": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.PixelShuffle(2)),
                      None),
    "pixel unshuffle": (lambda: nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, 1, 3)),
                        (6, 6)),
    "unpool": (lambda: nn.Sequential(nn.Conv2d(1, 1, 2, stride=2), _Unpool()), None),
}


class _Unpool(nn.Module):
    def forward(self, x):
        h, w = x.shape[-2:]
        rows = wally.arange(h).reshape(h, 1) * (2 * 2 * w) + 2 * w  # each window's row 1 ...
        corners = (rows + wally.arange(w).reshape(1, w) * 2 + 1).reshape(1, 1, h, w)  # col 1
        return F.max_unpool2d(x, corners.expand(*x.shape).contiguous(), 2)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_field_contains_the_probe(name):
    build, size = MODELS[name]
    model = build()
    result = summary(model, (1, 1, 24, 24))
    last = [r for r in result.layers if r.kind == "layer"][-1]
    field = last.receptive_field
    if size is not None:
        assert field.size == size, field
    out = last.output_shape[0][-2:]
    for unit in itertools.product(range(1, out[0] - 1, 3), range(1, out[1] - 1, 4)):
        try:
            probed = probe_receptive_field(model, (1, 24, 24), unit=unit)
        except ValueError as error:  # an unpooled zero: it depends on nothing
            assert name == "unpool" and "does not depend" in str(error)
            continue
        box = field.clipped_box(unit, (24, 24))
        for (p_lo, p_hi), (b_lo, b_hi) in zip(probed, box, strict=True):
            assert b_lo <= p_lo and p_hi <= b_hi, (unit, probed, box, field)
        if field.exact:
            assert tuple(probed) == tuple(box), (unit, probed, box)
