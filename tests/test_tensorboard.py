"""wally.utils.tensorboard.SummaryWriter, read back with TensorBoard's own event readers and
compared with torch.utils.tensorboard's summaries for the same calls."""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wally
from wally import nn

pytest.importorskip("tensorboard", reason="SummaryWriter needs it: pip install tensorboard")
PIL = pytest.importorskip("PIL.Image")

from google.protobuf.json_format import MessageToDict  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402

from wally.utils.tensorboard import SummaryWriter, _summary  # noqa: E402


def accumulator(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                       "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def events(folder):
    """Every event of every event file directly in ``folder``, in order."""
    found = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        found += list(EventFileLoader(str(path)).Load())
    return found


def decode(encoded):
    return np.asarray(PIL.open(io.BytesIO(encoded)))


# ----- scalars -----------------------------------------------------------------------------------
def test_scalars_hold_their_values_and_steps_from_tensors_arrays_and_numbers(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 0.5, 0)
        writer.add_scalar("loss", wally.tensor(0.25), 1)
        writer.add_scalar("loss", np.float64(0.125), 2)
        writer.add_scalar("loss", np.array([[0.0625]]), 3)
        writer.add_scalar("acc", wally.tensor([0.75]), global_step=7, walltime=123.0)
    acc = accumulator(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [
        (0, 0.5), (1, 0.25), (2, 0.125), (3, 0.0625)]
    (event,) = acc.Scalars("acc")
    assert (event.step, event.value, event.wall_time) == (7, 0.75, 123.0)


def test_add_scalars_writes_one_run_per_key_as_torch(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("run/loss", {"train": step, "val": 2 * step}, step)
    for key, factor in (("train", 1), ("val", 2)):
        values = [(e.step, e.value) for e in accumulator(tmp_path / f"run_loss_{key}")
                  .Scalars("run/loss")]
        assert values == [(s, factor * s) for s in range(3)]


def test_new_style_scalars_are_tensors_of_the_scalars_plugin(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("x", 1.5, 1, new_style=True)
        writer.add_scalar("y", 1 / 3, 1, new_style=True, double_precision=True)
    values = {v.tag: v for e in events(tmp_path) for v in e.summary.value}
    assert values["x"].metadata.plugin_data.plugin_name == "scalars"
    assert list(values["x"].tensor.float_val) == [1.5]
    assert list(values["y"].tensor.double_val) == [1 / 3]


def test_bad_scalars_are_refused_with_the_tag():
    with pytest.raises(ValueError, match=r"add_scalar\('loss'\): expected one number, got 3"):
        _summary.scalar("loss", wally.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="blob"):
        _summary.scalar("loss", "blob_name")


# ----- histograms --------------------------------------------------------------------------------
def test_histograms_hold_the_statistics_and_the_counts(tmp_path):
    values = np.random.default_rng(0).standard_normal(1000)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("w", wally.from_numpy(values.astype(np.float32)), 3)
        writer.add_histogram("fixed", np.array([0.5, 1.5, 1.5, 2.5]), 4, bins=[0, 1, 2, 3])
    acc = accumulator(tmp_path)
    (event,) = acc.Histograms("w")
    histo = event.histogram_value
    as_float = values.astype(np.float32).astype(np.float64)
    assert event.step == 3 and histo.num == 1000
    assert histo.min == as_float.min() and histo.max == as_float.max()
    assert histo.sum == pytest.approx(as_float.sum()) and histo.sum_squares == pytest.approx(
        (as_float ** 2).sum())
    assert sum(histo.bucket) == 1000
    (fixed,) = acc.Histograms("fixed")
    # TensorFlow's layout: one empty bucket before the first full one, upper limits.
    assert list(fixed.histogram_value.bucket) == [0, 1, 2, 1]
    assert list(fixed.histogram_value.bucket_limit) == [0, 1, 2, 3]


def torch_summary():
    pytest.importorskip("torch")
    from torch.utils.tensorboard import summary

    return summary


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 300), scale=st.sampled_from([1e-6, 1.0, 1e4]),
       seed=st.integers(0, 2**16), bins=st.sampled_from(["tensorflow", "auto", 7, "fd"]),
       max_bins=st.sampled_from([None, 3, 50]))
def test_histograms_equal_torch_summaries(size, scale, seed, bins, max_bins):
    summary = torch_summary()
    import torch

    values = np.random.default_rng(seed).standard_normal(size) * scale
    edges = _summary.tensorflow_bins() if bins == "tensorflow" else bins
    ours = _summary.histogram("h", wally.from_numpy(values), edges, max_bins=max_bins)
    theirs = summary.histogram("h", torch.from_numpy(values), edges, max_bins=max_bins)
    assert MessageToDict(ours) == MessageToDict(theirs)


def test_bad_histograms_are_refused():
    with pytest.raises(ValueError, match=r"add_histogram\('h'\): the values are empty"):
        _summary.histogram("h", np.zeros(0), 10)
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        _summary.histogram("h", np.array([1.0, np.nan]), 10)
    with pytest.raises(ValueError, match="no value lies within the bins"):
        _summary.histogram("h", np.array([5.0]), [0, 1, 2])


# ----- images ------------------------------------------------------------------------------------
def test_an_image_is_a_png_of_the_pixels_in_every_layout(tmp_path):
    rng = np.random.default_rng(1)
    chw = rng.random((3, 5, 7)).astype(np.float32)
    expected = (chw.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("chw", wally.from_numpy(chw), 1)
        writer.add_image("hwc", chw.transpose(1, 2, 0), 1, dataformats="HWC")
        writer.add_image("hw", grey, 1, dataformats="HW")
        writer.add_image("clipped", np.full((1, 2, 2), 3.0), 1)
    acc = accumulator(tmp_path)
    for tag in ("chw", "hwc"):
        (event,) = acc.Images(tag)
        assert (event.width, event.height, event.step) == (7, 5, 1)
        np.testing.assert_array_equal(decode(event.encoded_image_string), expected)
    np.testing.assert_array_equal(decode(acc.Images("hw")[0].encoded_image_string),
                                  np.stack([grey] * 3, axis=2))
    assert (decode(acc.Images("clipped")[0].encoded_image_string) == 255).all()


def test_add_images_tiles_the_batch_eight_to_a_row(tmp_path):
    batch = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 2, 3), np.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_images("batch", batch * 20, 0)
        writer.add_images("nhwc", (batch * 20).transpose(0, 2, 3, 1), 0, dataformats="NHWC")
    acc = accumulator(tmp_path)
    for tag in ("batch", "nhwc"):
        pixels = decode(acc.Images(tag)[0].encoded_image_string)
        assert pixels.shape == (4, 24, 3)  # two rows of eight 2x3 tiles
        for k in range(10):
            r, c = divmod(k, 8)
            assert (pixels[2 * r:2 * r + 2, 3 * c:3 * c + 3] == 20 * k).all(), k
        assert (pixels[2:, 6:] == 0).all()  # the empty places of the last row


@settings(max_examples=15, deadline=None)
@given(shape=st.sampled_from([((3, 4, 6), "CHW"), ((1, 4, 6), "CHW"), ((4, 6), "HW"),
                              ((4, 6, 3), "HWC"), ((5, 3, 4, 6), "NCHW"),
                              ((9, 4, 6, 1), "NHWC"), ((6, 4), "WH")]),
       seed=st.integers(0, 100), dtype=st.sampled_from(["float32", "uint8"]))
def test_images_equal_torch_summaries(shape, seed, dtype):
    summary = torch_summary()
    import torch

    dims, layout = shape
    rng = np.random.default_rng(seed)
    array = (rng.random(dims) * 1.2 if dtype == "float32" else
             rng.integers(0, 256, dims)).astype(dtype)
    ours = _summary.image("i", wally.from_numpy(array), dataformats=layout)
    theirs = summary.image("i", torch.from_numpy(array), dataformats=layout)
    a, b = ours.value[0].image, theirs.value[0].image
    assert (a.height, a.width, a.colorspace) == (b.height, b.width, b.colorspace)
    np.testing.assert_array_equal(decode(a.encoded_image_string),
                                  decode(b.encoded_image_string))


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"dataformats 'CHW' has 3 axes, got shape \(4, 4\)"):
        _summary.image("i", np.zeros((4, 4)), dataformats="CHW")
    with pytest.raises(ValueError, match="dataformats must be"):
        _summary.image("i", np.zeros((4, 4)), dataformats="HH")


def test_add_figure_writes_the_rendered_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    with SummaryWriter(tmp_path) as writer:
        writer.add_figure("fig", figure, 2)
        writer.add_figure("figs", [figure, figure], 3)
    acc = accumulator(tmp_path)
    (one,) = acc.Images("fig")
    assert (one.width, one.height, one.step) == (100, 50, 2)
    pixels = decode(one.encoded_image_string)
    assert pixels.min() < 128 < pixels.max()  # a line on a white ground
    assert (acc.Images("figs")[0].width, acc.Images("figs")[0].height) == (200, 50)


# ----- text and hyper-parameters ------------------------------------------------------------------
def test_text_is_read_back_by_the_text_plugin(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "**LeNet**, lr 0.1 — ok", 5)
    acc = accumulator(tmp_path)
    (event,) = acc.Tensors("notes/text_summary")
    assert event.step == 5
    assert event.tensor_proto.string_val[0].decode("utf-8") == "**LeNet**, lr 0.1 — ok"
    assert acc.SummaryMetadata("notes/text_summary").plugin_data.plugin_name == "text"


def test_text_equals_torch_summary():
    summary = torch_summary()
    assert MessageToDict(_summary.text("t", "é x")) == MessageToDict(summary.text("t", "é x"))


def test_hparams_are_read_back_by_the_hparams_plugin(tmp_path):
    from tensorboard.plugins.hparams import metadata

    with SummaryWriter(tmp_path) as writer:
        writer.add_hparams({"lr": 0.1, "batch": 64, "optimizer": "sgd", "bn": True,
                            "decay": None}, {"hparam/accuracy": 0.9}, run_name="trial")
    found = {v.tag: v for e in events(tmp_path / "trial") for v in e.summary.value}
    start = metadata.parse_session_start_info_plugin_data(
        found[metadata.SESSION_START_INFO_TAG].metadata.plugin_data.content)
    assert start.hparams["lr"].number_value == 0.1
    assert start.hparams["batch"].number_value == 64
    assert start.hparams["optimizer"].string_value == "sgd"
    assert start.hparams["bn"].bool_value is True
    assert "decay" not in start.hparams
    experiment = metadata.parse_experiment_plugin_data(
        found[metadata.EXPERIMENT_TAG].metadata.plugin_data.content)
    assert [m.name.tag for m in experiment.metric_infos] == ["hparam/accuracy"]
    assert [h.name for h in experiment.hparam_infos] == ["lr", "batch", "optimizer", "bn"]
    assert found["hparam/accuracy"].tensor.float_val[0] == pytest.approx(0.9)  # as v2 reads it
    assert metadata.SESSION_END_INFO_TAG in found


def test_hparams_of_numbers_and_strings_equal_torch_summaries():
    summary = torch_summary()
    args = ({"lr": 0.1, "opt": "adam", "k": 3}, {"m": 1.0}, {"opt": ["adam", "sgd"]})
    for ours, theirs in zip(_summary.hparams(*args), summary.hparams(*args), strict=True):
        assert MessageToDict(ours) == MessageToDict(theirs)


def test_bad_hparams_are_refused():
    with pytest.raises(TypeError, match="hparam_dict and metric_dict must be dicts"):
        _summary.hparams([("lr", 0.1)], {})
    with pytest.raises(ValueError, match=r"hparam_dict\['shape'\] must be"):
        _summary.hparams({"shape": (1, 2)}, {})


# ----- the graph ---------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.block = Block()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

    def forward(self, x):
        return self.head(self.block(wally.relu(self.stem(x))))


def test_the_graph_holds_the_modules_ops_and_shapes(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(Net(), wally.randn(2, 1, 4, 4))
    acc = accumulator(tmp_path)
    nodes = {node.name: node for node in acc.Graph().node}
    ops = [(name, node.op) for name, node in nodes.items()]
    assert ops == [
        ("input/input.1", "IO Node"),
        ("Net/Conv2d[stem]/weight", "Parameter"), ("Net/Conv2d[stem]/bias", "Parameter"),
        ("Net/Conv2d[stem]/ConvNd_0", "wally::ConvNd"),
        ("Net/ReLU_1", "wally::ReLU"),  # an F.relu in Net.forward belongs to Net
        ("Net/Block[block]/Conv2d[conv]/weight", "Parameter"),
        ("Net/Block[block]/Conv2d[conv]/bias", "Parameter"),
        ("Net/Block[block]/Conv2d[conv]/ConvNd_2", "wally::ConvNd"),
        ("Net/Block[block]/Add_3", "wally::Add"),  # the residual + in Block.forward
        ("Net/Sequential[head]/Flatten[0]/Reshape_4", "wally::Reshape"),
        ("Net/Sequential[head]/Linear[1]/weight", "Parameter"),
        ("Net/Sequential[head]/Linear[1]/bias", "Parameter"),
        ("Net/Sequential[head]/Linear[1]/Linear_5", "wally::Linear"),
        ("output/output.1", "IO Node"),
    ]
    assert list(nodes["Net/Block[block]/Add_3"].input) == [
        "Net/Block[block]/Conv2d[conv]/ConvNd_2", "Net/ReLU_1"]
    assert list(nodes["output/output.1"].input) == ["Net/Sequential[head]/Linear[1]/Linear_5"]

    def shape(name):
        (proto,) = nodes[name].attr["_output_shapes"].list.shape
        return [d.size for d in proto.dim]

    assert shape("Net/Block[block]/Add_3") == [2, 2, 4, 4]
    assert shape("Net/Sequential[head]/Flatten[0]/Reshape_4") == [2, 32]
    assert shape("Net/Conv2d[stem]/weight") == [2, 1, 3, 3]
    assert shape("output/output.1") == [2, 3]
    metadata = acc.RunMetadata("step1")
    stats = {s.node_name: s.memory[0].total_bytes for s in metadata.step_stats.dev_stats[0]
             .node_stats}
    assert stats["Net/Block[block]/Add_3"] == 2 * 2 * 4 * 4 * 4  # float32 bytes


def test_the_graph_of_a_zoo_model_has_every_conv_of_the_model(tmp_path):
    model = wally.models.get_model("resnet18_cifar")
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(model, [wally.randn(1, 3, 32, 32)])
    conv_nodes = [n.name for n in accumulator(tmp_path).Graph().node if n.op == "wally::ConvNd"]
    assert len(conv_nodes) == len(convs) > 10
    for name in convs:  # each under its own module's scope, ResNet/Sequential[layer1]/...
        scope, module = type(model).__name__, model
        for part in name.split("."):
            module = getattr(module, part)
            scope += f"/{type(module).__name__}[{part}]"
        assert sum(n.startswith(scope + "/ConvNd_") for n in conv_nodes) == 1, scope


def test_add_graph_needs_one_input(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="input_to_model is needed to trace Linear"):
            writer.add_graph(nn.Linear(2, 2))
        with pytest.raises(ValueError, match="models of one input; got 2 inputs"):
            writer.add_graph(nn.Linear(2, 2), (wally.randn(1, 2), wally.randn(1, 2)))


# ----- the writer itself -------------------------------------------------------------------------
def test_the_default_log_dir_is_runs_datetime_host_comment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="_lr0.1")
    writer.close()
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("_" + socket.gethostname() + "_lr0.1")
    assert writer.get_logdir() == os.path.join("runs", folder.name)
    assert list(folder.glob("events.out.tfevents.*"))


def test_filename_suffix_purge_step_and_reopening_after_close(tmp_path):
    writer = SummaryWriter(tmp_path, purge_step=4, filename_suffix=".wally")
    writer.add_scalar("x", 1.0, 4)
    writer.close()
    writer.close()  # a second close is ignored, as torch's
    writer.add_scalar("x", 2.0, 5)  # after close: a new file
    writer.close()
    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == 2 and all(f.name.endswith(".wally") for f in files)
    first = list(EventFileLoader(str(files[0])).Load())
    assert first[0].file_version == "brain.Event:2"
    starts = [e for e in first if e.HasField("session_log")]
    assert len(starts) == 1 and starts[0].step == 4 and starts[0].session_log.status == 1
    acc = accumulator(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [(4, 1.0), (5, 2.0)]


def test_the_purge_step_hides_what_a_killed_run_logged_after_it(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(1, 6):
            writer.add_scalar("x", float(step), step)
    with SummaryWriter(tmp_path, purge_step=3) as writer:  # resumed after step 2
        writer.add_scalar("x", 30.0, 3)
    acc = accumulator(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_flush_writes_pending_events_without_closing(tmp_path):
    writer = SummaryWriter(tmp_path, max_queue=1000, flush_secs=1000)
    writer.add_scalar("x", 1.0, 0)
    writer.flush()
    assert [e.value for e in accumulator(tmp_path).Scalars("x")] == [1.0]
    writer.close()


def test_a_missing_tensorboard_is_named_with_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.compat", None)
    with pytest.raises(ImportError, match=r"pip install tensorboard  \(or pip install "
                                          r"'wally-cnn\[tensorboard\]'\)"):
        SummaryWriter("unused")


def test_add_graph_leaves_the_model_and_the_random_state_as_they_were(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(8, 2), nn.BatchNorm1d(2))
    model.train()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    wally.manual_seed(3)
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(model, wally.randn(1, 1, 4, 4))  # a batch of one, with batch norm
    after_graph = wally.rand(3).numpy()
    wally.manual_seed(3)
    wally.randn(1, 1, 4, 4)
    assert (wally.rand(3).numpy() == after_graph).all()
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)


# ----- torch's API, name for name ---------------------------------------------------------------
METHODS = ["__init__", "add_scalar", "add_scalars", "add_histogram", "add_image", "add_images",
           "add_figure", "add_text", "add_hparams", "add_graph", "flush", "close",
           "get_logdir", "__enter__", "__exit__"]


@pytest.mark.parametrize("name", METHODS)
def test_every_method_has_torchs_parameters_and_defaults(name):
    pytest.importorskip("torch")
    import inspect

    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    ours = inspect.signature(getattr(SummaryWriter, name)).parameters
    theirs = inspect.signature(getattr(TorchWriter, name)).parameters
    if name == "__exit__":  # torch names the three exception arguments; wally takes *exc_info
        assert len(theirs) == 4
        return
    assert [(p.name, p.default, p.kind) for p in ours.values()] == \
        [(p.name, p.default, p.kind) for p in theirs.values()]


@pytest.mark.parametrize("new_style", [False, True])
@pytest.mark.parametrize("double_precision", [False, True])
def test_scalars_equal_torch_summaries(new_style, double_precision):
    summary = torch_summary()
    import torch

    for value in (0.1, 3, np.float32(2.5)):
        ours = _summary.scalar("s", wally.tensor(value), new_style, double_precision)
        theirs = summary.scalar("s", torch.tensor(value), new_style=new_style,
                                double_precision=double_precision)
        assert MessageToDict(ours) == MessageToDict(theirs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace, inside torch's
def test_the_graph_has_torchs_scopes_and_shapes_for_the_same_model(tmp_path):
    """torch.utils.tensorboard's add_graph of the same network: each computing op (aten::)
    sits in the same module scope, in the same order, with the same output shape."""
    pytest.importorskip("torch")
    import torch
    from torch.utils.tensorboard._pytorch_graph import graph as torch_graph

    from wally.utils.tensorboard._graph import graph

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x) + x

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.block = TorchBlock()
            self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 3))

        def forward(self, x):
            return self.head(self.block(torch.relu(self.stem(x))))

    TorchNet.__name__, TorchBlock.__name__ = "Net", "Block"

    def ops(graph_def, prefix):
        return [(node.name.rpartition("/")[0],
                 [d.size for d in node.attr["_output_shapes"].list.shape[0].dim])
                for node in graph_def.node if node.op.startswith(prefix)]

    theirs = ops(torch_graph(TorchNet(), torch.randn(2, 1, 4, 4))[0], "aten::")
    ours = ops(graph(Net(), wally.randn(2, 1, 4, 4))[0], "wally::")
    assert ours == theirs
