"""The training loop: fit, evaluate, History, metrics.jsonl, and exact resumption."""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import pytest

import wally
from wally import nn, optim
from wally.data import DataLoader, TensorDataset
from wally.train import CHECKPOINT_NAME, History, StopTraining, evaluate, fit

pytest.importorskip("safetensors", reason="checkpoints need safetensors: pip install safetensors")

_TIMING_KEYS = {"seconds", "examples_per_s"}


def blobs(count=96, seed=0, classes=3):
    """Easy 1×8×8 images: each class is noise around its own mean pattern."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(100).standard_normal((classes, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, classes, size=count)
    images = means[labels] + 0.5 * rng.standard_normal((count, 1, 8, 8)).astype(np.float32)
    return TensorDataset(wally.from_numpy(images), wally.from_numpy(labels.astype(np.int64)))


def small_cnn(classes=3):
    """Convolution, batch norm, pooling and dropout: every kind of state a resume must keep."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, classes),
    )


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def assert_bit_identical(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in _TIMING_KEYS} for r in history]


def test_fit_learns_and_reports_a_history():
    model = small_cnn()
    train, val = blobs(96, seed=0), blobs(48, seed=1)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, DataLoader(train, batch_size=16, shuffle=True),
                  DataLoader(val, batch_size=32), optimizer=optimizer, epochs=3, progress=False)
    assert isinstance(history, History) and len(history) == 3
    assert history.epoch == [1, 2, 3]
    assert [r["step"] for r in history] == [6, 12, 18]
    assert history.lr == [0.1, 0.1, 0.1]
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] >= 0.9
    assert all(rate > 0 for rate in history.examples_per_s)
    columns = history.to_dict()
    assert set(columns) == {"epoch", "step", "lr", "train_loss", "train_accuracy",
                            "examples_per_s", "seconds", "val_loss", "val_accuracy"}
    assert columns["val_loss"] == history.val_loss
    assert model.training


def test_evaluate_matches_a_computation_by_hand():
    model = small_cnn().eval()
    dataset = blobs(50, seed=2)
    model.train()
    result = evaluate(model, DataLoader(dataset, batch_size=16))
    assert model.training, "evaluate puts the model's mode back"
    model.eval()
    with wally.no_grad():
        x, y = dataset.tensors
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = float((logits.numpy().argmax(1) == y.numpy()).mean())
    assert result["count"] == 50
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["examples_per_s"] > 0


def test_train_mode_with_grad_in_fit_and_eval_mode_without_in_validation():
    model = small_cnn()
    seen = []
    model.register_forward_hook(
        lambda module, inputs, output: seen.append((module.training, wally.is_grad_enabled())))
    fit(model, DataLoader(blobs(32), batch_size=16), DataLoader(blobs(16, seed=1),
                                                                batch_size=16),
        optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=1, progress=False)
    assert seen == [(True, True), (True, True), (False, False)]


def test_accuracy_is_none_when_targets_are_not_labels():
    x = wally.randn(20, 3)
    dataset = TensorDataset(x, x.sum(dim=1, keepdim=True))
    model = nn.Linear(3, 1)
    history = fit(model, DataLoader(dataset, batch_size=5), DataLoader(dataset, batch_size=5),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
                  loss=nn.MSELoss(), progress=False)
    assert history.train_accuracy == [None, None] and history.val_accuracy == [None, None]
    assert history.val_loss[-1] < history.val_loss[0]


@pytest.mark.parametrize("when", ["epoch", "batch"])
def test_scheduler_steps_per_epoch_or_per_batch(when):
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, DataLoader(blobs(32), batch_size=16), optimizer=optimizer, epochs=3,
                  scheduler=scheduler, scheduler_step=when, progress=False)
    if when == "epoch":
        assert history.lr == pytest.approx([0.1, 0.05, 0.025])
        assert scheduler.last_epoch == 3
    else:
        assert history.lr == pytest.approx([0.1, 0.025, 0.00625])
        assert scheduler.last_epoch == 6


def test_metrics_jsonl_has_one_line_per_epoch_and_a_new_run_starts_it_afresh(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"stale": true}\n')
    model = small_cnn()
    history = fit(model, DataLoader(blobs(32), batch_size=16),
                  DataLoader(blobs(16, seed=1), batch_size=16),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
                  metrics_path=path, progress=False)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == json.loads(json.dumps(history.records))


def test_callbacks_see_each_epoch_and_can_stop_training(tmp_path):
    seen = []

    def stop_after_two(record):
        seen.append(record["epoch"])
        if record["epoch"] == 2:
            raise StopTraining

    model = small_cnn()
    history = fit(model, DataLoader(blobs(32), batch_size=16),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=5,
                  callbacks=[stop_after_two], checkpoint_dir=tmp_path, progress=False)
    assert seen == [1, 2] and len(history) == 2
    from wally.io import load_checkpoint

    assert load_checkpoint(tmp_path / CHECKPOINT_NAME, small_cnn()).epoch == 2


# ----- resuming -------------------------------------------------------------------------------
def _run(epochs, folder, *, resume=False, generator=None, scheduler="step", every=None,
         kill_at=None):
    """One training run on fresh objects, as a new process would build them."""
    model = small_cnn()
    loader = DataLoader(blobs(80), batch_size=16, shuffle=True, generator=generator)
    val_loader = DataLoader(blobs(32, seed=1), batch_size=16)
    if scheduler == "step":
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        sched, when = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7), "epoch"
    else:
        optimizer = optim.Adam(model.parameters(), lr=0.01)
        sched = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.02, total_steps=3 * 5)
        when = "batch"
    calls = []

    class Killed(Exception):
        pass

    def loss(output, target):
        if wally.is_grad_enabled():
            calls.append(1)
            if kill_at is not None and len(calls) == kill_at:
                raise Killed
        return nn.functional.cross_entropy(output, target)

    try:
        history = fit(model, loader, val_loader, optimizer=optimizer, epochs=epochs, loss=loss,
                      scheduler=sched, scheduler_step=when, checkpoint_dir=folder,
                      checkpoint_every=every, resume=resume, progress=False,
                      metrics_path=folder / "metrics.jsonl")
    except Killed:
        return None, model, optimizer
    return history, model, optimizer


def test_resume_at_an_epoch_boundary_is_exact(tmp_path):
    wally.manual_seed(0)
    straight, model_a, optimizer_a = _run(2, tmp_path / "a")

    wally.manual_seed(0)
    _run(1, tmp_path / "b")
    wally.manual_seed(12345)  # a new process: other initial weights, another RNG state
    resumed, model_b, optimizer_b = _run(2, tmp_path / "b", resume=True)

    assert_bit_identical(weights(model_a), weights(model_b))
    state_a, state_b = optimizer_a.state_dict(), optimizer_b.state_dict()
    for index in state_a["state"]:
        np.testing.assert_array_equal(state_a["state"][index]["momentum_buffer"],
                                      state_b["state"][index]["momentum_buffer"])
    assert state_a["param_groups"] == state_b["param_groups"]
    assert without_timing(straight) == without_timing(resumed)
    metrics = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in metrics] == [1, 2]


def test_resume_after_a_kill_in_mid_epoch_is_exact(tmp_path):
    wally.manual_seed(0)
    straight, model_a, _ = _run(3, tmp_path / "a", generator=7, scheduler="onecycle", every=3)

    wally.manual_seed(0)
    killed, _, _ = _run(3, tmp_path / "b", generator=7, scheduler="onecycle", every=3,
                        kill_at=9)  # 5 steps an epoch: killed in step 9, saved after step 6
    assert killed is None
    from wally.io import load_checkpoint

    saved = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME, small_cnn())
    assert (saved.epoch, saved.step, saved.extra["fit"]["batches_done"]) == (1, 6, 1)
    wally.manual_seed(999)
    resumed, model_b, _ = _run(3, tmp_path / "b", generator=7, scheduler="onecycle", every=3,
                               resume=True)
    assert_bit_identical(weights(model_a), weights(model_b))
    assert without_timing(straight) == without_timing(resumed)


def test_resume_without_a_checkpoint_starts_afresh_and_a_finished_run_stays_finished(tmp_path):
    wally.manual_seed(0)
    fresh, model_a, _ = _run(1, tmp_path / "a", resume=True)
    wally.manual_seed(0)
    plain, model_b, _ = _run(1, tmp_path / "b")
    assert_bit_identical(weights(model_a), weights(model_b))

    again, model_c, _ = _run(1, tmp_path / "a", resume=True)
    assert without_timing(again) == without_timing(fresh)
    assert_bit_identical(weights(model_a), weights(model_c))


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    fit(model, DataLoader(blobs(32), batch_size=16), optimizer=optimizer, epochs=1,
        checkpoint_dir=tmp_path, progress=False)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def exploding(output, target):
        return nn.functional.cross_entropy(output, target) * float("inf")

    with pytest.raises(FloatingPointError, match="loss became inf at epoch 2, step 3"):
        fit(model, DataLoader(blobs(32), batch_size=16), optimizer=optimizer, epochs=2,
            loss=exploding, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before


def test_bad_arguments_are_named():
    model = small_cnn()
    loader = DataLoader(blobs(16), batch_size=8)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler_step must be 'epoch' or 'batch'"):
        fit(model, loader, optimizer=optimizer, epochs=1, scheduler_step="step")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        fit(model, loader, optimizer=optimizer, epochs=1, resume=True)
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        fit(model, loader, optimizer=optimizer, epochs=-1)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive"):
        fit(model, loader, optimizer=optimizer, epochs=1, checkpoint_dir=".",
            checkpoint_every=0)
    with pytest.raises(TypeError, match=r"pair \(inputs, targets\), got a list of 1"):
        fit(model, DataLoader(TensorDataset(wally.randn(4, 1, 8, 8)), batch_size=2),
            optimizer=optimizer, epochs=1, progress=False)


def test_nothing_is_printed_where_no_one_watches(capsys):
    model = small_cnn()
    fit(model, DataLoader(blobs(16), batch_size=8), optimizer=optim.SGD(model.parameters(),
                                                                         lr=0.1), epochs=1)
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_progress_bar(monkeypatch):
    pytest.importorskip("tqdm", reason="the progress bar needs tqdm: pip install tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    model = small_cnn()
    fit(model, DataLoader(blobs(32), batch_size=8), DataLoader(blobs(8), batch_size=8),
        optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2)
    output = terminal.getvalue()
    assert "epoch 1/2" in output and "epoch 2/2" in output
    assert "ex/s" in output and "acc=" in output and "val_acc=" in output


# ----- the CI target --------------------------------------------------------------------------
def test_lenet_modern_learns_sklearn_digits_to_95_percent_within_a_minute():
    """The issue's CI target: lenet_modern on scikit-learn's digits (8×8 upsampled ×3 and
    padded to 28×28), at least 0.95 test accuracy in under a minute on 2 cores."""
    pytest.importorskip("sklearn", reason="the digits target needs scikit-learn")
    from wally.cli import _images
    from wally.models import get_model

    start = time.perf_counter()
    wally.manual_seed(0)
    model = get_model("lenet_modern")
    train = _images.load("digits", True, model.input_size)
    test = _images.load("digits", False, model.input_size)
    assert train[0][0].shape == (1, 28, 28)
    optimizer = optim.Adam(model.parameters(), lr=0.002)
    fit(model, DataLoader(train, batch_size=32, shuffle=True, generator=0), optimizer=optimizer,
        epochs=3, progress=False)
    result = evaluate(model, DataLoader(test, batch_size=360))
    seconds = time.perf_counter() - start
    print(f"digits: test accuracy {result['accuracy']:.4f} in {seconds:.1f}s")
    assert result["count"] == 360
    assert result["accuracy"] >= 0.95
    assert seconds < 60, f"took {seconds:.1f}s"
    assert math.isfinite(result["loss"])
