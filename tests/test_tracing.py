"""wally.tracing: the one topological sort, the module-call trace that the summary, the
receptive fields and the ONNX exporter share, and the layer rules keyed by class."""

from __future__ import annotations

import sys

import pytest

import wally
from wally import nn
from wally.analysis import cost, receptive_field, summary
from wally.analysis.cost import conv_macs, node_cost
from wally.analysis.receptive_field import NODE_FIELDS, ReceptiveField, module_receptive_field
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


# ----- one rule per op: a layer is what its nodes are ----------------------------------------
def test_the_tracer_records_a_frozen_layer_without_making_it_require_grad():
    layer = nn.Conv2d(1, 2, 3).requires_grad_(False)
    x = wally.randn(1, 1, 5, 5)  # needs no gradient either: autograd alone records nothing
    assert layer(x).grad_fn is None
    with record_calls(layer) as calls:
        y = layer(x)
    assert isinstance(y.grad_fn, ConvNd) and not y.requires_grad
    assert y.grad_fn.needs_input_grad == (False, False, False)
    assert [type(node) for node, _ in calls.roots[0].ops] == [ConvNd]
    x = wally.randn(1, 1, 5, 5, dtype=wally.float64)
    with record_calls(layer) as calls:  # integer results are left out (the ONNX tracer keeps them)
        n = (x > 0).long()
    assert n.grad_fn is None and layer(x.float()).grad_fn is None  # and it is off again


class _FunctionalConv(nn.Module):
    """A layer wally has no rule for, made of an op it has one for."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(wally.randn(6, 3, 5, 5))

    def forward(self, x):
        return F.conv2d(x, self.weight, stride=2, padding=1, dilation=2)


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_a_layer_costs_and_sees_what_its_nodes_do(frozen, training):
    """nn.Conv2d has no rule of its own: its row is its conv node's, as is the row of a layer
    that calls F.conv2d itself, frozen or not, in a training summary or not."""
    layers = [nn.Conv2d(3, 6, 5, stride=2, padding=1, dilation=2, bias=False), _FunctionalConv()]
    rows = []
    for layer in layers:
        layer.requires_grad_(not frozen)
        s = summary(nn.Sequential(nn.Identity(), layer), (2, 3, 17, 17), training=training,
                    verbose=0)
        rows.append(s.layers[-1])
    expected = conv_macs((5, 5), 3, 6, 6 * 6, batch=2)
    for row in rows:
        assert row.macs == expected and row.receptive_field.size == (9, 9)
        assert row.receptive_field.jump == (2, 2) and row.receptive_field.start == (-1, -1)
        assert row.rule.startswith("conv:")
        assert row.weight_grad_macs == (0 if frozen else expected)
        assert row.input_grad_macs == (0 if training else expected)  # the images need none
        if frozen and training:  # no gradient goes through it: autograd keeps nothing
            assert row.saved_bytes == 0
        elif not frozen:  # dW needs the layer's input
            assert row.saved_bytes >= 2 * 3 * 17 * 17 * 4
    assert cost.module_cost(layers[0], (2, 3, 17, 17)) == cost.module_cost(layers[1],
                                                                           (2, 3, 17, 17))


def test_module_cost_and_field_leave_the_layer_and_the_random_state_alone():
    bn = nn.BatchNorm2d(3).train()
    before = bn.running_mean.array.copy(), bn.num_batches_tracked.item()
    state = wally.random.get_rng_state()
    assert cost.module_cost(bn, (4, 3, 5, 5)).flops == 7 * 4 * 3 * 5 * 5
    assert cost.module_cost(nn.Dropout(0.5).train(), (4, 3)).flops == 12
    assert (bn.running_mean.array == before[0]).all()
    assert bn.num_batches_tracked.item() == before[1]
    assert wally.random.get_rng_state()["state"] == state["state"]
    with pytest.raises(ValueError, match=r"module_cost: Conv2d on \(1, 1, 8, 8\) gives "
                                         r"\(1, 2, 6, 6\), not the output_shape \(1, 2, 8, 8\)"):
        cost.module_cost(nn.Conv2d(1, 2, 3), (1, 1, 8, 8), (1, 2, 8, 8))
    field = ReceptiveField.identity(2, (8, 8))
    out = module_receptive_field(nn.MaxPool2d(3, 2, padding=1), field, (1, 1, 8, 8))
    assert (out.size, out.jump, out.start) == ((3, 3), (2, 2), (-1, -1))


def test_a_frozen_model_in_a_training_summary_costs_its_forward_and_keeps_nothing():
    """Every op is recorded (so every row has its cost), but no gradient goes through any of
    them, so none keeps anything for backward: ReLU's output, max pooling's argmax, the
    sigmoid's and tanh's outputs would be kept were they trained."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AvgPool2d(2), nn.Sigmoid(), nn.Tanh(), nn.Flatten(),
                          nn.Linear(16, 3), nn.Softmax(1))
    model.requires_grad_(False)
    rows = summary(model, (2, 1, 10, 10), training=True, verbose=0).layers[1:]
    assert [row.saved_bytes for row in rows] == [0] * 10
    assert all(row.flops > 0 for row in rows if row.type != "Flatten")
    model[2:].requires_grad_(True)  # the linear layer trains: what is below keeps its arrays
    rows = summary(model, (2, 1, 10, 10), training=True, verbose=0).layers[1:]
    assert all(row.saved_bytes == 0 for row in rows[:8])
    model.requires_grad_(True)
    rows = summary(model, (2, 1, 10, 10), training=True, verbose=0).layers[1:]
    kept = {row.type for row in rows if row.saved_bytes > 0}
    assert {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Sigmoid", "Tanh"} <= kept
