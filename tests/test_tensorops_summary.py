"""wally.summary counts the issue-18 tensor ops by the rules in wally.analysis.cost, and the
receptive field of an op that moves values along a spatial axis becomes a bound."""

from __future__ import annotations

import math

import wally
from wally import nn


class Ops(nn.Module):
    """Every costed tensor op once, on a (1, 3, 4) input, in the forward of a module with a
    child (so that the summary lists the ops as rows of their own)."""

    def __init__(self):
        super().__init__()
        self.first = nn.ReLU()
        self.weight = nn.Parameter(wally.randn(4, 5))

    def forward(self, x):
        y = wally.einsum("bij,jk->bik", self.first(x), self.weight)      # (1, 3, 5)
        z = wally.bmm(y, y.transpose(1, 2))                               # (1, 3, 3)
        s = wally.sort(wally.erf(y), -1).values                           # (1, 3, 5)
        c = wally.cumsum(s, 1) + wally.prod(y, 2, keepdim=True)           # (1, 3, 5)
        t = wally.einsum("bij->b", z)                                     # (1,)
        return c.sinh() + wally.logsumexp(y, 2, keepdim=True) + t.reshape(1, 1, 1)


def test_costs_follow_the_rules():
    ops = {}
    for row in wally.summary(Ops(), (1, 3, 4)).layers:
        if row.kind == "op":
            ops.setdefault(row.type, []).append(row)
    einsums = ops["Einsum"]
    assert [r.macs for r in einsums] == [1 * 3 * 4 * 5, 0]
    assert [r.flops for r in einsums] == [2 * 60, 9]  # the one-operand sum adds its 9 elements
    assert ops["MatMul"][0].macs == 3 * 3 * 5  # bmm is a matmul
    assert ops["Erf"][0].flops == 15 and ops["Sinh"][0].flops == 15
    assert ops["SortedGather"][0].flops == 3 * 5 * math.ceil(math.log2(5))
    assert ops["CumSum"][0].flops == 15 and ops["Prod"][0].flops == 15
    assert ops["LogSumExp"][0].flops == 4 * 15


def test_rolling_a_spatial_axis_makes_the_field_a_bound():
    class Rolled(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)
            self.fn = fn

        def forward(self, x):
            return self.fn(self.conv(x))

    exact = wally.analysis.receptive_field(Rolled(lambda y: wally.erf(y)), (1, 9, 9))
    assert exact.exact and exact.size == (3, 3)
    for fn in (lambda y: wally.roll(y, 1, 3), lambda y: wally.cumsum(y, 2),
               lambda y: wally.rot90(y, 1, (2, 3)), lambda y: wally.sort(y, -1).values):
        field = wally.analysis.receptive_field(Rolled(fn), (1, 9, 9))
        assert not field.exact and field.size == (9, 9)
    # along the channels the spatial field is untouched
    field = wally.analysis.receptive_field(Rolled(lambda y: wally.cumsum(y, 1)), (1, 9, 9))
    assert field.exact and field.size == (3, 3)
