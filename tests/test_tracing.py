"""wally.tracing: the one topological sort, the module-call trace that the summary, the
receptive fields and the ONNX exporter share, and the layer rules keyed by class."""

from __future__ import annotations

import sys

import pytest

import wally
from wally import nn
from wally.analysis import cost, receptive_field, summary
from wally.analysis.cost import conv_macs, node_cost
from wally.analysis.receptive_field import NODE_FIELDS
from wally.analysis.training_cost import backward_macs
from wally.autograd import Function, topological_order
from wally.functional.conv import ConvNd
from wally.nn import functional as F
from wally.onnx.trace import trace
from wally.tracing import Rules, forward_order, post_order, record_calls


# ----- the order ----------------------------------------------------------------------------
def test_post_order_puts_every_node_after_its_parents_once():
    parents = {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    nodes = {name: type(name, (), {})() for name in parents}  # distinct objects, told by id
    names = {id(obj): name for name, obj in nodes.items()}
    order = [names[id(n)] for n in post_order([nodes["d"]],
                                             lambda n: [nodes[p] for p in parents[names[id(n)]]])]
    assert order == ["a", "c", "b", "d"]  # the last parent is expanded first


def test_forward_order_is_the_backward_order_reversed():
    x = wally.randn(2, 3, requires_grad=True)
    y = (x.exp() * x).sum() + x.sum()
    forward = forward_order([y])
    backward = topological_order([y._ctx])
    assert set(map(id, forward)) == set(map(id, backward))
    position = {id(node): i for i, node in enumerate(forward)}
    for node in forward:  # every node after the nodes it reads
        for t in node.inputs:
            if t is not None and t._ctx is not None:
                assert position[id(t._ctx)] < position[id(node)]


# ----- the module calls -------------------------------------------------------------------
class _Branches(nn.Module):
    """Two branches, concatenated in forward and passed through dropout (the identity in
    evaluation, which returns its input itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 2, 5, padding=2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: wally.Tensor) -> wally.Tensor:
        return self.dropout(F.relu(wally.cat([self.a(x), self.b(x)], dim=1)))


def test_each_node_belongs_to_the_innermost_call_that_made_it():
    model = _Branches().eval()
    with record_calls(model) as calls:
        model(wally.randn(1, 1, 8, 8, requires_grad=True))
    [root] = calls.roots
    assert [c.name for c in root.children] == ["a", "b", "dropout"]
    assert [c.name for c in calls.finished] == ["a", "b", "dropout", ""]  # inner calls first
    assert [type(node).__name__ for node, _ in calls.roots[0].children[0].ops] == ["ConvNd"]
    # the cat and the relu ran in the block's forward, before the dropout that returned them
    assert sorted(type(node).__name__ for node, _ in root.ops) == ["Cat", "ReLU"]
    assert [type(item[0]).__name__ if isinstance(item, tuple) else item.name
            for item in root.ordered()] == ["a", "b", "Cat", "ReLU", "dropout"]


def test_summary_and_onnx_see_the_same_calls():
    model = _Branches().eval()
    rows = summary(model, input_size=(1, 1, 8, 8), verbose=0).layers
    assert [(row.kind, row.label) for row in rows] == [
        ("block", "_Branches"), ("layer", "a: Conv2d"), ("layer", "b: Conv2d"),
        ("op", "(cat)"), ("op", "(relu)"), ("layer", "dropout: Dropout"),
    ]
    traced = trace(model, wally.randn(1, 1, 8, 8))
    scopes = {type(node).__name__: traced.scopes.get(id(node)) for node in traced.nodes}
    assert scopes["Cat"] == ("", "_Branches")
    assert scopes["ReLU"] == ("", "_Branches")


def test_receptive_field_records_one_forward_pass_and_no_summary(monkeypatch):
    summary_module = sys.modules["wally.analysis.summary"]  # (the package's name is the function)

    def refuse(*args, **kwargs):
        raise AssertionError("receptive_field must not build a summary")

    monkeypatch.setattr(summary_module, "summary", refuse)
    model = _Branches().eval()
    field = receptive_field(model, (1, 8, 8), layer="")
    assert field.size == (5, 5)  # the union of the two branches
    assert receptive_field(model, (1, 8, 8), layer="a").size == (3, 3)
    with pytest.raises(ValueError, match="no layer named 'c'"):
        receptive_field(model, (1, 8, 8), layer="c")


# ----- rules keyed by class ---------------------------------------------------------------
def test_rules_find_the_nearest_class_and_refuse_a_second_rule():
    rules: Rules = Rules("test")

    class Base:
        pass

    class Child(Base):
        pass

    class Other:
        pass

    @rules.register(Base)
    def base_rule() -> str:
        return "base"

    assert rules.find(Child()) is base_rule
    assert rules.find(Other()) is None
    with pytest.raises(ValueError, match="has a rule already"):
        rules.register(Base)(lambda: "again")


class _Twice(Function):
    """An op that no rule knows."""

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return 2 * gy


class _Doubler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: wally.Tensor) -> wally.Tensor:
        return _Twice()(self.conv(x))


def test_an_op_without_rules_is_reported_not_taken_as_known():
    model = _Doubler().eval()
    with pytest.warns(UserWarning, match=r"no rule for the op .*_Twice"):
        result = summary(model, input_size=(1, 1, 8, 8), verbose=0)
    [op] = [row for row in result.layers if row.kind == "op"]
    assert op.type == "_Twice"
    assert op.rule == "_Twice: 1 FLOP per element (estimate)"
    assert op.flops == 36
    assert op.receptive_field is not None and not op.receptive_field.exact
    assert op.receptive_field.size == (3, 3)
    assert "~3x3" in str(result)
    assert cost.NODE_COSTS.find(_Twice()) is None
    assert NODE_FIELDS.find(_Twice()) is None


class _RenamedConv(ConvNd):
    """A convolution node under another name: it gets ConvNd's rules through the MRO."""


class _Convolve(nn.Module):
    def __init__(self, renamed: bool) -> None:
        super().__init__()
        self.renamed = renamed
        self.weight = nn.Parameter(wally.randn(4, 2, 3, 3))
        self.bias = nn.Parameter(wally.zeros(4))

    def forward(self, x: wally.Tensor) -> wally.Tensor:
        if self.renamed:
            return _RenamedConv((2, 2), ((1, 1), (1, 1)), (1, 1), 1)(x, self.weight, self.bias)
        return F.conv2d(x, self.weight, self.bias, stride=2, padding=1)


def test_a_renamed_conv_node_gets_the_conv_rules():
    plain, renamed = (summary(_Convolve(r), input_size=(2, 2, 9, 9), verbose=0) for r in
                      (False, True))
    [row], [expected] = renamed.layers, plain.layers  # one layer: the model, one node
    assert row.macs == expected.macs == conv_macs((3, 3), 2, 4, 5 * 5, batch=2)
    assert row.flops == expected.flops and row.rule == expected.rule
    assert row.rule.startswith("conv:")
    assert row.receptive_field == expected.receptive_field
    assert row.receptive_field.size == (3, 3) and row.receptive_field.jump == (2, 2)
    x, w = wally.randn(1, 2, 9, 9, requires_grad=True), wally.randn(4, 2, 3, 3)
    out = _RenamedConv((1, 1), ((0, 0), (0, 0)), (1, 1), 1)(x, w, None)
    assert node_cost(out._ctx, out).macs == conv_macs((3, 3), 2, 4, 7 * 7)
    w.requires_grad_(True)
    out = _RenamedConv((1, 1), ((0, 0), (0, 0)), (1, 1), 1)(x, w, None)
    forward = conv_macs((3, 3), 2, 4, 7 * 7)
    assert backward_macs(out._ctx, out) == (forward, forward)  # dX and dW, as for ConvNd
