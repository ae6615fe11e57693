"""Receptive fields: the arithmetic against hand-computed values, and every field of every
layer of many architectures against a probe (back-propagation from one output unit)."""

from __future__ import annotations

import numpy as np
import pytest

import wally
from wally import models, nn
from wally.analysis import (
    AxisField,
    ReceptiveField,
    input_gradient,
    probe_receptive_field,
    receptive_field,
    summary,
)
from wally.analysis.receptive_field import merge_fields, probe_receptive_fields
from wally.nn import functional as F


# ----- the arithmetic ------------------------------------------------------------------------
def test_window_recurrence():
    pixel = AxisField(1, 1, 0)
    conv = pixel.window(kernel_size=5, stride=1, padding=2)            # LeNet's first conv
    assert conv == AxisField(5, 1, -2)
    pool = conv.window(2, 2, 0)
    assert pool == AxisField(6, 2, -2)
    dilated = pool.window(3, 1, 1, dilation=2)                          # r + (k − 1)·d·j
    assert dilated == AxisField(6 + 2 * 2 * 2, 2, -2 - 2)
    assert dilated.box(3) == (-4 + 6, -4 + 6 + 14 - 1)
    assert dilated.center(0) == -4 + 13 / 2
    assert dilated.extent(4) == AxisField(14 + 3 * 2, 0, -4)


def test_merge_takes_the_union_of_the_branches():
    wide = ReceptiveField((AxisField(7, 2, -3),))
    narrow = ReceptiveField((AxisField(3, 2, -1),))
    assert merge_fields([(wide, (5,)), (narrow, (5,))], (5,)).size == (7,)   # the largest
    shifted = ReceptiveField((AxisField(3, 2, 4),))
    union = merge_fields([(narrow, (5,)), (shifted, (5,))], (5,))
    assert union.axes[0] == AxisField(8, 2, -1) and union.exact
    other_jump = ReceptiveField((AxisField(3, 4, -1),))
    assert not merge_fields([(narrow, (5,)), (other_jump, (5,))], (5,)).exact
    # A gate seeing everything (a broadcast 1-unit branch) makes the field global.
    everything = ReceptiveField((AxisField(20, 2, -5),))
    gated = merge_fields([(narrow, (5,)), (everything, (1,))], (5,))
    assert gated.is_global and gated.axes[0] == AxisField(20, 0, -5)


def test_lenet_fields():
    net = models.lenet()
    assert receptive_field(net, (1, 28, 28), layer="5") == ReceptiveField(
        (AxisField(16, 4, -2), AxisField(16, 4, -2)), True, ((0, 27), (0, 27))
    )
    field = receptive_field(net, (1, 28, 28))  # the logits see the whole (padded) image
    assert field is not None and field.is_global and field.size == (32, 32)
    assert probe_receptive_field(net, (1, 28, 28), layer="5") == ((6, 21), (6, 21))
    assert probe_receptive_field(net, (1, 28, 28), layer=net[0]) == ((11, 15), (11, 15))


# ----- the probe on many architectures -------------------------------------------------------
class Dilated(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(2, 3, 3, dilation=2), nn.ReLU(),
                         nn.Conv2d(3, 2, 3, dilation=3, padding=2), nn.Tanh(),
                         nn.Conv2d(2, 2, (3, 2), dilation=(1, 4)))


class StridedAsymmetric(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, 2, (3, 5), stride=(2, 1), padding=(1, 2)), nn.ReLU(),
                         nn.Conv2d(2, 2, (1, 3), stride=(1, 3)),
                         nn.MaxPool2d((2, 3), stride=(1, 2), padding=(1, 1)),
                         nn.Conv2d(2, 2, 3, stride=2))


class Pooling(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, 2, 4, padding="same"), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
                         nn.AvgPool2d(3, 2, 1, ceil_mode=True),
                         nn.Conv2d(2, 2, 2, padding="same", dilation=3),
                         nn.AvgPool2d((2, 3), stride=(2, 1)))


class ForwardCode(nn.Module):
    """Convolution, pooling and padding called in forward, a circular convolution and a
    global gate: the autograd graph, not the modules, decides these fields."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(wally.randn(3, 2, 3, 3))
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular")
        self.conv2 = nn.Conv2d(3, 3, 3)

    def forward(self, x):
        x = F.pad(x, [2, 1, 0, 3])
        x = F.conv2d(x, self.weight, None, stride=(1, 3), padding=(2, 0), dilation=(1, 2))
        x = F.avg_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True)
        y = self.conv(x)
        z = self.conv2(y) * F.adaptive_avg_pool2d(y, 1)
        return z + F.avg_pool2d(x, 3, stride=1).sigmoid()


class Residual(nn.Module):
    """Two branches of different reach, the shortcut strided: the merge is the union."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(2, 4, 5, stride=2, padding=2), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, padding=1))
        self.shortcut = nn.Conv2d(2, 4, 1, stride=2)

    def forward(self, x):
        return F.relu(self.main(x) + self.shortcut(x))


class InceptionLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, stride=2)
        self.b1 = nn.Conv2d(2, 2, 1)
        self.b2 = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 5, padding=2))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(2, 2, 3, padding=1, dilation=1))

    def forward(self, x):
        x = self.stem(x)
        return wally.cat((self.b1(x), self.b2(x), self.b3(x)), dim=1)


class OneD(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv1d(1, 2, 5, stride=2, dilation=2, padding=3), nn.ReLU(),
                         nn.MaxPool1d(3, 2), nn.Conv1d(2, 2, 3, padding="same"),
                         nn.AdaptiveAvgPool1d(4))


class ThreeD(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv3d(1, 2, (3, 1, 5), stride=(1, 2, 2), padding=(1, 0, 2)),
                         nn.MaxPool3d(2), nn.Conv3d(2, 1, 3, dilation=(1, 2, 1)))


class Adaptive(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d((5, 3)), nn.Flatten(),
                         nn.Linear(30, 4))


def arch(name, build, input_size):
    return pytest.param(build, input_size, id=name)


ARCHITECTURES = [
    arch("lenet", lambda: models.lenet(), (1, 28, 28)),
    arch("lenet_modern", lambda: models.lenet_modern(), (1, 28, 28)),
    arch("dilated", Dilated, (2, 32, 32)),
    arch("strided_asymmetric", StridedAsymmetric, (1, 31, 40)),
    arch("pooling_same_ceil", Pooling, (1, 33, 35)),
    arch("forward_code", ForwardCode, (2, 30, 30)),
    arch("residual", Residual, (2, 21, 21)),
    arch("inception_like", InceptionLike, (1, 25, 25)),
    arch("one_d", OneD, (1, 64)),
    arch("three_d", ThreeD, (1, 12, 20, 20)),
    arch("adaptive", Adaptive, (1, 25, 16)),
    arch("resnet18", lambda: models.resnet18(input_size=36), (1, 36, 36)),
    arch("googlenet", lambda: models.googlenet(input_size=32), (1, 32, 32)),
    arch("nin", lambda: models.nin(input_size=72), (1, 72, 72)),
    # AlexNet and VGG-11's layouts with fewer channels: the fields don't depend on them.
    arch("alexnet", lambda: models.alexnet(input_size=67, width=0.125, hidden_features=32),
         (1, 67, 67)),
    arch("vgg11", lambda: models.vgg(((1, 8), (1, 16), (2, 16), (2, 32), (2, 32)),
                                     input_size=32, hidden_features=32), (1, 32, 32)),
    arch("densenet", lambda: models.densenet(input_size=32), (1, 32, 32)),
]


def centre(shape, nd):
    return (0,) * nd if len(shape) < nd + 2 else tuple((n - 1) // 2 for n in shape[-nd:])


@pytest.mark.parametrize("build, input_size", ARCHITECTURES)
def test_every_field_matches_the_probe(build, input_size):
    model = build()
    result = summary(model, (1, *input_size))
    measured = probe_receptive_fields(model, input_size)
    nd = len(input_size) - 1
    seen: set[str] = set()
    exact = 0
    for row in result.layers:
        if row.kind not in ("layer", "block") or row.name in seen:
            continue
        seen.add(row.name)
        field = row.receptive_field
        assert field is not None, row.name
        box = field.clipped_box(centre(row.output_shape[0], nd), input_size[1:])
        got = measured[row.name]
        # A flattened map is a list of single positions; only what mixes them (Linear,
        # global pooling) sees the union the summary shows.
        if field.exact and row.type not in ("Flatten",):
            assert got == box, (row.name, row.type, field)
            exact += 1
        else:
            assert all(lo <= g_lo and g_hi <= hi for (lo, hi), (g_lo, g_hi) in zip(box, got)), (
                row.name, row.type, field, got)
    assert exact >= 1


def test_dilation_widens_the_probed_field():
    """The probe is not the arithmetic in disguise: a dilated 3-tap kernel reaches 5 pixels."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2))
    assert probe_receptive_field(net, (1, 9, 9)) == ((2, 6), (2, 6))
    assert receptive_field(net, (1, 9, 9)).size == (5, 5)


def test_unseen_trailing_pixels_narrow_the_field():
    # 11×11 windows with stride 4 over 72 pixels stop at pixel 70: nothing sees pixel 71.
    field = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 11, stride=4),
                                          nn.Conv2d(1, 1, 3, padding=5)), (1, 72, 72))
    assert field.bounds == ((0, 70), (0, 70))
    assert field.box((20, 20))[0] == (60, 78)
    assert field.clipped_box((20, 20), (72, 72)) == ((60, 70), (60, 70))
    net = nn.Sequential(nn.Conv2d(1, 1, 11, stride=4), nn.Conv2d(1, 1, 3, padding=5))
    assert probe_receptive_field(net, (1, 72, 72), unit=(20, 20)) == ((60, 70), (60, 70))
    assert probe_receptive_field(net, (1, 72, 72)) == ((24, 42), (24, 42))  # centre: inside


def test_effective_field_lies_inside_the_analytic_one():
    net = models.lenet_modern().eval()
    x = wally.randn(1, 1, 28, 28)
    grad = input_gradient(net, x, layer="7", unit=(1, 2))
    assert grad.shape == (1, 1, 28, 28)
    field = receptive_field(net, (1, 28, 28), layer="7")
    (top, bottom), (left, right) = field.clipped_box((1, 2), (28, 28))
    inside = np.zeros((28, 28), dtype=bool)
    inside[top:bottom + 1, left:right + 1] = True
    magnitude = np.abs(grad[0, 0])
    assert magnitude[inside].sum() > 0
    assert magnitude[~inside].sum() == 0
    assert all(p.grad is None for p in net.parameters())
