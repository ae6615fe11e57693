"""``wally train --tensorboard DIR`` and TensorBoardCallback, read back with TensorBoard's own
EventAccumulator: the scalars equal metrics.jsonl, the histograms are the final weights, the
kernel image is the first conv's kernels, and the graph is the model's."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import wally
from wally.cli import main

pytest.importorskip("tensorboard", reason="--tensorboard needs tensorboard")
pytest.importorskip("safetensors", reason="checkpoints need safetensors")
PIL = pytest.importorskip("PIL.Image")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from wally.utils.tensorboard.callback import first_conv, kernel_grid  # noqa: E402

QUICK = ["--dataset", "digits", "--limit", "96", "--batch-size", "32", "--epochs", "2",
         "--optimizer", "adam"]


def accumulator(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                       "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tb")
    assert main(["train", "lenet", *QUICK, "--out", str(out / "run"),
                 "--tensorboard", str(out / "tb")]) == 0
    return out


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_scalars_are_the_runs_metrics_per_epoch(run):
    acc = accumulator(run / "tb")
    metrics = records(run / "run")
    for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"),
                     ("accuracy/train", "train_accuracy"), ("accuracy/val", "val_accuracy"),
                     ("lr", "lr"), ("examples_per_s", "examples_per_s")):
        logged = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert [s for s, _ in logged] == [1, 2], tag
        np.testing.assert_allclose([v for _, v in logged], [r[key] for r in metrics],
                                   rtol=1e-6, err_msg=tag)


def test_the_histograms_are_the_weights_and_gradients_of_every_parameter(run):
    from wally.io.checkpoint import load_checkpoint
    from wally.models import get_model

    acc = accumulator(run / "tb")
    model = get_model("lenet")
    load_checkpoint(run / "run" / "checkpoint.safetensors", model)
    for name, parameter in model.named_parameters():
        weights = acc.Histograms(f"weights/{name}")
        assert [e.step for e in weights] == [1, 2], name
        final = weights[-1].histogram_value
        values = parameter.detach().numpy().astype(np.float64).ravel()
        assert final.num == values.size and final.min == values.min() and \
            final.max == values.max(), name
        assert final.sum == pytest.approx(values.sum(), rel=1e-6, abs=1e-9), name
        gradients = acc.Histograms(f"gradients/{name}")
        assert [e.step for e in gradients] == [1, 2], name
        assert gradients[-1].histogram_value.num == values.size


def test_the_kernel_image_is_the_first_convs_kernels(run):
    from wally.io.checkpoint import load_checkpoint
    from wally.models import get_model

    acc = accumulator(run / "tb")
    model = get_model("lenet")
    load_checkpoint(run / "run" / "checkpoint.safetensors", model)
    name, conv = first_conv(model)
    (tag,) = [t for t in acc.Tags()["images"] if t.startswith("kernels/")]
    assert tag == f"kernels/{name}"
    event = acc.Images(tag)[-1]
    assert event.step == 2
    pixels = np.asarray(PIL.open(io.BytesIO(event.encoded_image_string)))
    # Six 5x5 kernels of one channel: one row of six tiles, each enlarged 7x to 35x35,
    # 2 pixels of white between and around them.
    assert pixels.shape == (2 + 35 + 2, 2 + 6 * (35 + 2), 3)
    weight = conv.weight.detach().numpy()
    for k in range(6):
        tile = pixels[2:37, 2 + 37 * k:37 + 37 * k, 0].astype(np.float64)
        kernel = weight[k, 0]
        scaled = (kernel - kernel.min()) / (kernel.max() - kernel.min())
        expected = np.repeat(np.repeat(scaled, 7, axis=0), 7, axis=1)
        np.testing.assert_allclose(tile / 255, expected, atol=1 / 255 + 1e-6, err_msg=str(k))


def test_the_graph_is_lenets(run):
    graph = accumulator(run / "tb").Graph()
    ops = [(n.name, n.op) for n in graph.node if n.op.startswith("wally::")]
    assert [op for _, op in ops] == ["wally::ConvNd", "wally::Sigmoid", "wally::AvgPoolNd"] * 2 \
        + ["wally::Reshape"] + ["wally::Linear", "wally::Sigmoid"] * 2 + ["wally::Linear"]
    assert ops[0][0].startswith("Sequential/Conv2d[0]/")
    output = [n for n in graph.node if n.name == "output/output.1"][0]
    assert [d.size for d in output.attr["_output_shapes"].list.shape[0].dim] == [1, 10]


def test_logging_changes_nothing_the_run_computes(run, tmp_path):
    assert main(["train", "lenet", *QUICK, "--out", str(tmp_path / "plain")]) == 0
    timing = {"seconds", "examples_per_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in records(run / "run")] == \
        [{k: v for k, v in r.items() if k not in timing} for r in records(tmp_path / "plain")]


def test_a_resumed_run_purges_what_came_after_its_checkpoint(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"
    args = ["train", "lenet", *QUICK, "--out", str(out), "--tensorboard", str(tb)]
    assert main(args) == 0
    from wally.utils.tensorboard import SummaryWriter

    with SummaryWriter(tb) as writer:  # as if a run had logged past its last checkpoint
        writer.add_scalar("loss/train", 99.0, 3)
    assert main([*args[:-4], "--epochs", "3", "--out", str(out), "--tensorboard", str(tb),
                 "--resume"]) == 0
    logged = [(e.step, e.value) for e in accumulator(tb).Scalars("loss/train")]
    assert [step for step, _ in logged] == [1, 2, 3]
    assert logged[-1][1] == pytest.approx(records(out)[-1]["train_loss"])


def test_a_missing_tensorboard_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard.compat", None)
    assert main(["train", "lenet", *QUICK, "--out", str(tmp_path / "r"),
                 "--tensorboard", str(tmp_path / "tb")]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "pip install tensorboard" in error and "Traceback" not in error
    assert not (tmp_path / "r").exists()  # no half-made run is left behind


def test_an_unwritable_log_dir_is_one_line_and_leaves_no_run(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "lenet", *QUICK, "--out", str(tmp_path / "r"),
                 "--tensorboard", str(tmp_path / "file" / "tb")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("wally train: error: --tensorboard: cannot write to ")
    assert "\n" not in error and not (tmp_path / "r").exists()


def test_the_callback_logs_what_fit_reports(tmp_path):
    from wally import nn, optim
    from wally.data import DataLoader, TensorDataset
    from wally.train import fit
    from wally.utils.tensorboard import SummaryWriter, TensorBoardCallback

    wally.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    data = TensorDataset(wally.randn(16, 3, 6, 6), wally.randint(0, 2, (16,)))
    with SummaryWriter(tmp_path) as writer:
        history = fit(model, DataLoader(data, batch_size=8), optimizer=optim.SGD(
            model.parameters(), lr=0.1), epochs=3, progress=False,
            callbacks=[TensorBoardCallback(writer, model, histograms=False)])
    acc = accumulator(tmp_path)
    assert [e.value for e in acc.Scalars("loss/train")] == pytest.approx(history.train_loss)
    assert "loss/val" not in acc.Tags()["scalars"]
    assert acc.Tags()["histograms"] == []
    pixels = np.asarray(PIL.open(io.BytesIO(acc.Images("kernels/0")[-1].encoded_image_string)))
    expected = kernel_grid(model[0].weight)  # RGB kernels: four colour tiles
    assert pixels.shape == expected.transpose(1, 2, 0).shape == (37, 2 + 4 * 35, 3)
    with pytest.raises(ValueError, match="has no convolution named 'conv9'"):
        TensorBoardCallback(writer, model, kernels="conv9")


@pytest.mark.parametrize("epoch", ["x", True, -1, 10**40, None])
def test_a_hostile_checkpoint_epoch_does_not_break_the_purge_step(epoch, tmp_path, monkeypatch):
    import wally.io.checkpoint as checkpoint

    out, tb = tmp_path / "run", tmp_path / "tb"
    args = ["train", "lenet", *QUICK[:-4], "--epochs", "1", "--optimizer", "adam", "--out",
            str(out), "--tensorboard", str(tb)]
    assert main(args) == 0
    real = checkpoint.read_metadata
    monkeypatch.setattr(checkpoint, "read_metadata",
                        lambda path, *a: {**real(path, *a), "epoch": epoch})
    from wally.utils.tensorboard import writer as writer_module

    made = []
    original = writer_module.SummaryWriter.__init__

    def spy(self, *a, **k):
        made.append(k.get("purge_step"))
        original(self, *a, **k)

    monkeypatch.setattr(writer_module.SummaryWriter, "__init__", spy)
    main([*args, "--resume"])  # whatever fit makes of the checkpoint, no traceback here
    assert made == [None]
