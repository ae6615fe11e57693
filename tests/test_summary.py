"""``wally.analysis.summary``: parameters, MACs, FLOPs, memory and the table, against the
parameters themselves, the note's formulas and d2l's pinned LeNet numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import wally
from wally import models, nn
from wally.analysis import summary
from wally.nn import functional as F

# Small inputs keep the big models quick; the parameter counts don't depend on them except
# through the first Linear layer, which the builders size for the input.
MODELS = [
    ("lenet", {}),
    ("lenet_modern", {}),
    ("alexnet", {"input_size": 67}),
    ("vgg11", {"input_size": 32}),
    ("nin", {"input_size": 72}),
    ("googlenet", {"input_size": 32}),
    ("resnet18", {"input_size": 32}),
    ("resnet18_cifar", {}),
    ("densenet", {"input_size": 32}),
]


def real_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def first_rows(result):
    """The first row of each module call name (shared modules have several)."""
    rows = {}
    for row in result.layers:
        if row.kind in ("layer", "block") and row.name not in rows:
            rows[row.name] = row
    return rows


# ----- d2l LeNet: the pinned numbers --------------------------------------------------------
def test_lenet_pinned_numbers():
    net = models.lenet()
    result = summary(net, (1, 1, 28, 28))
    assert result.total_params == real_params(net) == 61_706
    conv_linear = [r for r in result.layers if r.type in ("Conv2d", "Linear")]
    assert sum(r.macs for r in conv_linear) == 416_520
    assert result.totals["macs_by_type"] == {"Conv2d": 357_600, "Linear": 58_920}
    rows = first_rows(result)
    after_pool2 = rows["5"].receptive_field
    assert after_pool2.size == (16, 16)
    assert after_pool2.jump == (4, 4)
    assert after_pool2.start == (-2, -2)
    assert rows["0"].receptive_field.size == (5, 5)
    assert [r.output_shape[0] for r in conv_linear] == [
        (1, 6, 28, 28), (1, 16, 10, 10), (1, 120), (1, 84), (1, 10)
    ]


def test_lenet_table_as_printed():
    text = str(summary(models.lenet(), (1, 1, 28, 28)))
    assert "61,706" in text and "416,520" in text
    line = next(line for line in text.splitlines() if line.strip().startswith("5: AvgPool2d"))
    assert line.split()[-3:] == ["16x16", "4x4", "-2,-2"]
    assert "MACs = multiply-accumulates" in text  # the convention is in the header


# ----- parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", MODELS, ids=[m[0] for m in MODELS])
def test_parameter_total_equals_the_parameters(name, kwargs):
    model = models.get_model(name, **kwargs)
    result = summary(model)
    assert result.total_params == real_params(model)
    assert result.totals["trainable_params"] == real_params(model)
    assert result.layers[0].subtotal["trainable_params"] == real_params(model)
    # Every block's subtotal is the sum of the layers and ops below it.
    rows = result.layers
    for i, row in enumerate(rows):
        if row.kind != "block":
            continue
        below = []
        for other in rows[i + 1:]:
            if other.depth <= row.depth:
                break
            below.append(other)
        assert row.subtotal["macs"] == sum(r.macs for r in below)
        assert row.subtotal["trainable_params"] == row.trainable_params + sum(
            r.trainable_params for r in below
        )


def test_conv_parameters_are_k_k_cin_cout_over_groups_plus_cout():
    net = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 6, (1, 5), bias=False),
                        nn.Conv2d(6, 6, 3, groups=6))
    rows = first_rows(summary(net, (1, 4, 12, 12)))
    assert rows["0"].params == 3 * 3 * 4 * 8 // 2 + 8
    assert rows["1"].params == 1 * 5 * 8 * 6
    assert rows["2"].params == 3 * 3 * 6 * 6 // 6 + 6


def test_frozen_shared_and_unused_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.frozen = nn.Conv2d(3, 3, 1)
            self.unused = nn.Linear(5, 5)
            self.frozen.requires_grad_(False)

        def forward(self, x):
            return self.frozen(self.conv(self.conv(x)[:, :1]))

    net = Net()
    result = summary(net, (1, 1, 8, 8))
    assert result.total_params == real_params(net)
    assert result.totals["non_trainable_params"] == 3 * 3 + 3
    conv_rows = [r for r in result.layers if r.name == "conv"]
    assert [r.params for r in conv_rows] == [30, 0]  # shared: counted at its first call
    assert conv_rows[1].macs == conv_rows[0].macs > 0  # ...but its work counts every time
    unused = [r for r in result.layers if r.kind == "unused"]
    assert [(r.name, r.params) for r in unused] == [("unused", 30)]


def test_modes_buffers_and_global_random_state_are_untouched():
    net = models.lenet_modern().train()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    wally.manual_seed(3)
    expected = wally.randn(4).numpy()
    wally.manual_seed(3)
    summary(net, (2, 1, 28, 28))
    assert np.array_equal(wally.randn(4).numpy(), expected)
    assert all(m.training for m in net.modules())
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)


# ----- MACs and FLOPs -------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", MODELS, ids=[m[0] for m in MODELS])
def test_conv_and_linear_macs_follow_the_formula(name, kwargs):
    model = models.get_model(name, **kwargs)
    result = summary(model, (2, *model.input_size))
    modules = dict(model.named_modules())
    checked = 0
    for row in result.layers:
        if row.kind != "layer":
            continue
        module = modules[row.name]
        out = row.output_shape[0]
        if isinstance(module, nn.Conv2d):
            k = math.prod(module.kernel_size)
            m_out = out[2] * out[3]
            expected = 2 * k * module.in_channels * module.out_channels // module.groups * m_out
            assert row.macs == expected, row.name
            bias = 2 * module.out_channels * m_out if module.bias is not None else 0
            assert row.flops == 2 * expected + bias
            checked += 1
        elif isinstance(module, nn.Linear):
            assert row.macs == 2 * module.in_features * module.out_features
            assert row.flops == 2 * row.macs + 2 * module.out_features
            checked += 1
    assert checked >= 3


def test_one_and_three_dimensional_convolutions():
    class To3d(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], 4, 1, 4, 8)

    net = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, padding=1), To3d(),
                        nn.Conv3d(4, 2, (1, 3, 3)))
    rows = first_rows(summary(net, (1, 2, 65)))
    assert rows["0"].output_shape[0] == (1, 4, 32)
    assert rows["0"].macs == 5 * 2 * 4 * 32
    assert rows["2"].output_shape[0] == (1, 2, 1, 2, 6)
    assert rows["2"].macs == 1 * 3 * 3 * 4 * 2 * (1 * 2 * 6)


def test_every_kind_of_layer_has_a_cost():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(3, stride=1, padding=1), nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(),
        nn.AdaptiveAvgPool2d((3, 3)), nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Dropout(),
        nn.Linear(16, 5), nn.GELU(), nn.Softmax(dim=1),
    )
    rows = first_rows(summary(net, (1, 1, 8, 8)))
    per_element = {"1": 2, "2": 1, "5": 2, "6": 3, "7": 1, "13": 5, "14": 5}
    for name, flops in per_element.items():
        assert rows[name].flops == flops * math.prod(rows[name].output_shape[0]), name
    assert rows["1"].macs == 4 * 8 * 8                 # batch norm: one x·scale + shift each
    assert rows["3"].flops == 4 * 4 * 4 * (4 - 1)      # max pool 2×2: 3 comparisons per output
    assert rows["4"].flops == 4 * 4 * 4 * 9            # avg pool 3×3: 9 per output
    assert rows["8"].flops == 4 * 3 * 3 * 4            # adaptive 4 → 3: windows of 2, 2, 2
    assert rows["9"].flops == 4 * 2 * 2 * (4 - 1)      # adaptive max 3 → 2: windows of 2
    for name in ("10", "11"):                          # a view; the identity in evaluation
        assert rows[name].flops == 0 and rows[name].rule
    nonzero = [r for r in rows.values() if r.kind == "layer" and r.type not in
               ("Flatten", "Dropout")]
    assert all(r.flops > 0 for r in nonzero)


def test_merges_in_forward_code_are_counted():
    result = summary(models.resnet18(input_size=32))
    adds = [r for r in result.layers if r.kind == "op" and r.type == "Add"]
    assert len(adds) == 8  # one residual add per block
    for row in adds:
        assert row.flops == math.prod(row.output_shape[0])
    block = first_rows(result)["b2.0"]
    i = result.layers.index(block)
    children = [r.type if r.kind == "op" else r.name.rsplit(".", 1)[-1]
                for r in result.layers[i + 1:i + 8]]
    assert children == ["conv1", "bn1", "ReLU", "conv2", "bn2", "Add", "ReLU"]

    result = summary(models.googlenet(input_size=32))
    cats = [r for r in result.layers if r.kind == "op" and r.type == "Cat"]
    assert len(cats) == 9  # one per inception block
    assert all(r.flops == 0 and r.output_bytes > 0 for r in cats)


def test_functional_ops_and_custom_leaves_are_counted():
    class Leaf(nn.Module):  # no sub-modules: costed from its autograd nodes
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(wally.randn(3, 2, 3, 3))

        def forward(self, x):
            return F.conv2d(x, self.weight, None, padding=1) * 2.0

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.leaf = Leaf()

        def forward(self, x):
            y = self.leaf(x)
            return F.max_pool2d(y, 2) + y.mean()

    rows = summary(Block(), (1, 2, 6, 6)).layers
    leaf = next(r for r in rows if r.name == "leaf")
    assert leaf.macs == 3 * 3 * 2 * 3 * 36
    assert leaf.flops == 2 * leaf.macs + 3 * 36
    ops = {r.type: r for r in rows if r.kind == "op"}
    assert set(ops) == {"MaxPoolNd", "Mean", "Add"}
    assert ops["MaxPoolNd"].flops == 3 * 3 * 3 * 3
    assert ops["Mean"].flops == 3 * 36 + 1
    assert ops["Add"].flops == 27


# ----- memory ---------------------------------------------------------------------------------
def test_memory_columns():
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    result = summary(net, (5, 2, 8, 8))
    rows = first_rows(result)
    assert rows["0"].output_bytes == 5 * 4 * 6 * 6 * 4
    assert rows["1"].saved_bytes == rows["1"].output_bytes  # ReLU keeps its output
    assert rows["0"].saved_bytes >= 5 * 2 * 8 * 8 * 4 // 2   # a conv keeps (a form of) its input
    totals = result.totals
    assert totals["saved_bytes"] == sum(r.saved_bytes for r in result.layers)
    assert totals["output_bytes"] == sum(r.output_bytes for r in result.layers
                                         if r.kind != "block")
    assert totals["training_bytes"] == 2 * totals["param_bytes"] + totals["saved_bytes"]
    assert totals["input_bytes"] == 5 * 2 * 8 * 8 * 4
    assert summary(net.double(), (1, 2, 8, 8)).totals["input_bytes"] == 2 * 8 * 8 * 8


# ----- the outputs ----------------------------------------------------------------------------
def test_dict_json_and_markdown():
    result = summary(models.lenet_modern(), (1, 1, 28, 28))
    data = json.loads(result.to_json())
    assert data["totals"]["params"] == 44_878
    assert data["totals"]["buffer_elements"] > 0
    assert len(data["layers"]) == len(result.layers)
    assert data["layers"][1]["receptive_field"]["size"] == [5, 5]
    assert "MACs/FLOPs" in data["conventions"]
    markdown = result.to_markdown()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == len(result.layers) + 2
    assert table[1].startswith("|:---|")
    assert "&nbsp;&nbsp;0: Conv2d" in markdown


def test_depth_limits_the_rows_not_the_totals():
    result = summary(models.resnet18(input_size=32), depth=1)
    text = str(result)
    assert "conv1: Conv2d" not in text and "b2: Sequential" in text
    assert f"{result.totals['params']:,}" in text


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_size"):
        summary(nn.Sequential(nn.Conv2d(1, 1, 3)))
    with pytest.raises(TypeError, match="Module"):
        summary("lenet", (1, 1, 28, 28))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"batch_size= is gone: input_size includes the batch"):
        summary(models.lenet(), batch_size=2)


# ----- torchinfo's interface ------------------------------------------------------------------
def test_input_size_includes_the_batch_axis_as_in_torchinfo():
    one = summary(models.lenet(), input_size=(1, 1, 28, 28))
    three = summary(models.lenet(), input_size=(3, 1, 28, 28))
    assert three.input_shape == [(3, 1, 28, 28)]
    assert three.layers[0].output_shape == [(3, 10)]
    assert three.total_mult_adds == 3 * one.total_mult_adds == 3 * 416_520
    assert summary(models.lenet(), input_size=[2, 1, 28, 28]).input_shape == [(2, 1, 28, 28)]
    # the default is one sample of what the model was built for, batch axis added
    assert summary(models.lenet()).input_shape == [(1, 1, 28, 28)]
    # batch_dim: input_size leaves the batch axis out, a batch of 1 goes in at batch_dim
    assert summary(models.lenet(), (1, 28, 28), batch_dim=0).input_shape == [(1, 1, 28, 28)]


def test_input_data_and_its_alias_input():
    x = wally.randn(2, 1, 28, 28)
    a = summary(models.lenet(), input_data=x)
    b = summary(models.lenet(), input=x)
    assert a.input_shape == b.input_shape == [(2, 1, 28, 28)]
    assert [r.macs for r in a.layers] == [r.macs for r in b.layers]
    with pytest.raises(ValueError, match="one of input_size and input_data, not both"):
        summary(models.lenet(), (1, 1, 28, 28), input_data=x)
    with pytest.raises(ValueError, match="input_data= or its alias input=, not both"):
        summary(models.lenet(), input_data=x, input=wally.randn(1, 1, 28, 28))


def test_several_inputs_keyword_inputs_dtypes_and_forward_kwargs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)

        def forward(self, x, y, scale=1.0):
            return self.conv(x + y) * scale

    result = summary(Two(), input_size=[(1, 2, 5, 5), (1, 2, 5, 5)], scale=2.0)
    assert result.input_shape == [(1, 2, 5, 5)] * 2
    assert result.layers[0].input_shape == [(1, 2, 5, 5)] * 2
    double = summary(Two().double(), input_size=((1, 2, 5, 5), (1, 2, 5, 5)),
                     dtypes=[wally.float64, wally.float64])
    assert double.dtype == "float64"
    keyword = summary(Two(), input_data={"x": wally.randn(1, 2, 5, 5),
                                         "y": wally.randn(1, 2, 5, 5)})
    conv = next(r for r in keyword.layers if r.name == "conv")
    assert conv.output_shape == [(1, 3, 3, 3)] and conv.input_shape == [(1, 2, 5, 5)]


def test_col_names_pick_and_order_the_columns():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    net[3].bias.requires_grad_(False)
    result = summary(net, (1, 1, 8, 8), col_names=("input_size", "output_size", "num_params",
                                                   "params_percent", "kernel_size",
                                                   "mult_adds", "trainable"))
    lines = str(result).splitlines()
    header = next(line for line in lines if line.startswith("Layer"))
    titles = ["Input shape", "Output shape", "Params", "Params %", "Kernel shape", "MACs",
              "All trainable"]
    assert [header.index(t) for t in titles] == sorted(header.index(t) for t in titles)
    assert "FLOPs" not in header and "RF" not in header
    conv = next(line for line in lines if line.strip().startswith("0: Conv2d"))
    assert "(1, 1, 8, 8)" in conv and "(1, 2, 6, 6)" in conv and "[3, 3]" in conv
    total = 2 * 9 + 2 + 72 * 3 + 3
    assert f"{100 * 20 / total:.2f}%" in conv and conv.rstrip().endswith("True")
    linear = next(line for line in lines if line.strip().startswith("3: Linear"))
    assert linear.rstrip().endswith("Partial")
    relu = next(line for line in lines if line.strip().startswith("1: ReLU"))
    assert relu.rstrip().endswith("--")
    markdown = result.to_markdown().splitlines()
    assert markdown[2].count("|") == len(titles) + 2
    data = result.to_dict()
    assert data["layers"][1]["kernel_size"] == [3, 3]
    assert data["layers"][1]["input_shape"] == [1, 1, 8, 8]
    with pytest.raises(ValueError, match=r"unknown col_names \['macs'\]"):
        summary(net, (1, 1, 8, 8), col_names=["macs"])


def test_default_depth_is_torchinfo_s_three():
    net = nn.Sequential(nn.Sequential(nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 3)))))
    shown = str(summary(net, (1, 1, 5, 5)))
    assert "0: Sequential" in shown and "0: Conv2d" not in shown  # the conv is at depth 4
    assert "0: Conv2d" in str(summary(net, (1, 1, 5, 5), depth=None))
    assert "0: Conv2d" in str(summary(net, (1, 1, 5, 5), depth=4))


def test_torchinfo_layout_options_run_unchanged():
    plain = summary(models.lenet(), (1, 1, 28, 28), verbose=0)
    same = summary(models.lenet(), (1, 1, 28, 28), verbose=0, col_width=20, device="cpu",
                   mode="eval", row_settings=("var_names", "depth"), cache_forward_pass=True)
    assert str(same) == str(plain)


def test_verbose_prints_the_table_as_torchinfo(capsys):
    result = summary(models.lenet(), (1, 1, 28, 28))  # a script (no sys.ps1): printed
    assert capsys.readouterr().out.strip() == str(result)
    summary(models.lenet(), (1, 1, 28, 28), verbose=0)
    assert capsys.readouterr().out == ""
    summary(models.lenet(), (1, 1, 28, 28), verbose=1)
    assert "61,706" in capsys.readouterr().out


@pytest.mark.parametrize("call, error, match", [
    (lambda: summary(models.lenet(), (1, 28, 28, -1)), ValueError,
     r"input_size must be positive sizes \(N, C, \*spatial\), batch axis included"),
    (lambda: summary(models.lenet(), "1x28x28"), TypeError, "input_size must be a shape"),
    (lambda: summary(models.lenet(), depth=-1), ValueError, "depth must be an integer >= 0"),
    (lambda: summary(models.lenet(), verbose=3), ValueError, "verbose must be 0, 1, 2 or None"),
    (lambda: summary(models.lenet(), col_width=0), ValueError,
     "col_width must be a positive integer, got 0"),
    (lambda: summary(models.lenet(), row_settings=["depth", "tree"]), ValueError,
     r"unknown row_settings \['tree'\]"),
    (lambda: summary(models.lenet(), device="cuda"), ValueError,
     "the forward pass runs on the CPU, got device='cuda'"),
    (lambda: summary(models.lenet(), mode="train"), ValueError,
     "evaluation mode only"),
    (lambda: summary(models.lenet(), input_size=[(1, 1, 28, 28)], dtypes=[]), ValueError,
     "got 0 dtypes for 1 inputs"),
])
def test_bad_torchinfo_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_cli_input_size_includes_the_batch_axis(capsys):
    from wally.cli import main

    assert main(["summary", "lenet", "--input-size", "2", "1", "28", "28", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [[2, 1, 28, 28]]
    assert data["totals"]["macs"] == 2 * 416_520
    assert main(["summary", "lenet", "--col-names", "output_size", "num_params"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("Layer"))
    assert header.split() == ["Layer", "Output", "shape", "Params"]
    assert main(["summary", "lenet", "--input-size", "28"]) == 1
    assert "expected N C H W, the batch axis first" in capsys.readouterr().err
