"""The training loop: ``fit`` a model over epochs, ``evaluate`` it, and resume exactly.

``fit`` is the loop a PyTorch script writes by hand, once::

    for epoch in range(epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
        evaluate(model, val_loader); scheduler.step(); save_checkpoint(...)

plus a progress bar, a history of per-epoch metrics, ``metrics.jsonl`` and checkpoints.

Resuming is exact: a run stopped after any checkpoint and resumed with ``resume=True`` ends with
the same weights, bit for bit, as a run never stopped. A checkpoint holds the weights, the
optimizer and scheduler states, wally's global RNG state and the train loader's own generator
state. One saved in the middle of an epoch (``checkpoint_every``) also holds the RNG states from
the start of that epoch: resuming re-creates the epoch's shuffle from them, skips the batches
already trained on, and then restores the RNG states of the moment of saving.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wally.autograd import no_grad
from wally.creation import as_tensor, get_rng_state, manual_seed, set_rng_state
from wally.distributed.comm import world_size
from wally.distributed.training import after_backward, any_process, is_main_process, set_epoch
from wally.io.atomic import append_line, atomic_write
from wally.io.checkpoint import (
    CheckpointError,
    load_checkpoint,
    loader_rng_state,
    save_checkpoint,
    set_loader_rng_state,
)
from wally.tensor import Tensor

__all__ = ["CHECKPOINT_NAME", "History", "StopTraining", "evaluate", "fit"]

CHECKPOINT_NAME = "checkpoint.safetensors"
_FIT_KEY = "fit"  # the key of the loop's own state inside a checkpoint's ``extra``


class StopTraining(Exception):  # noqa: N818 - named for what it asks, like StopIteration
    """Raise it from a callback to end :func:`fit` after the current epoch (it is saved)."""


class History:
    """What :func:`fit` measured, one record (a dict) per epoch.

    Each record has ``epoch``, ``step`` (optimizer steps so far), ``lr`` (of the first parameter
    group, at the epoch's start), ``train_loss``, ``train_accuracy``, ``examples_per_s``,
    ``seconds`` and, with a validation loader, ``val_loss`` and ``val_accuracy``. Accuracies
    are ``None`` where the targets are not class labels.

    >>> history = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=3)
    >>> history.val_accuracy        # one value per epoch
    [0.81, 0.85, 0.87]
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self.records: list[dict[str, Any]] = [dict(r) for r in records]

    def append(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))

    def column(self, name: str) -> list[Any]:
        """The value of ``name`` in every epoch (``None`` where an epoch lacks it)."""
        return [record.get(name) for record in self.records]

    @property
    def epoch(self) -> list[int]:
        return self.column("epoch")

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def train_accuracy(self) -> list[float | None]:
        return self.column("train_accuracy")

    @property
    def val_loss(self) -> list[float | None]:
        return self.column("val_loss")

    @property
    def val_accuracy(self) -> list[float | None]:
        return self.column("val_accuracy")

    @property
    def examples_per_s(self) -> list[float]:
        return self.column("examples_per_s")

    @property
    def lr(self) -> list[float]:
        return self.column("lr")

    def to_dict(self) -> dict[str, list[Any]]:
        """The history as columns, ``{"epoch": [1, 2], "train_loss": [...], ...}``."""
        names: dict[str, None] = {}
        for record in self.records:
            names.update(dict.fromkeys(record))
        return {name: self.column(name) for name in names}

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[index]

    def __repr__(self) -> str:
        return f"History({len(self.records)} epochs)"


# ----- one batch -----------------------------------------------------------------------------
def _unpack(batch: Any, where: str) -> tuple[Tensor, Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = f"a {type(batch).__name__}" + (
            f" of {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(f"{where}: expected every batch to be a pair (inputs, targets), got {kind}")
    inputs, targets = batch
    if isinstance(inputs, tuple):  # several model arguments, e.g. (series, lengths)
        return (inputs, targets if isinstance(targets, Tensor) else as_tensor(targets))  # type: ignore[return-value]
    return (inputs if isinstance(inputs, Tensor) else as_tensor(inputs),
            targets if isinstance(targets, Tensor) else as_tensor(targets))


def _correct(output: Tensor, targets: Tensor) -> int | None:
    """How many rows of ``output`` have their largest logit at the target class, or ``None``
    when the targets are not class labels (a regression or soft-label loss)."""
    target_array = targets.array
    if output.ndim != 2 or target_array.ndim != 1 or target_array.dtype.kind not in "iu":
        return None
    return int((output.array.argmax(axis=1) == target_array).sum())


class _Meter:
    """Running sums of one pass: example-weighted loss, correct predictions, seconds."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        state = state or {}
        self.loss_sum = float(state.get("loss_sum", 0.0))
        self.count = int(state.get("count", 0))
        self.correct: int | None = state.get("correct", 0)
        self.seconds = float(state.get("seconds", 0.0))

    def add(self, loss: float, correct: int | None, count: int) -> None:
        self.loss_sum += loss * count
        self.count += count
        self.correct = None if correct is None or self.correct is None else self.correct + correct

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else math.nan

    @property
    def accuracy(self) -> float | None:
        if self.correct is None or not self.count:
            return None
        return self.correct / self.count

    def rate(self, seconds: float) -> float:
        return self.count / seconds if seconds > 0 else 0.0

    def state(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum, "count": self.count, "correct": self.correct,
                "seconds": self.seconds}


# ----- the progress bar ----------------------------------------------------------------------
def _in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel: IPython's shell there is the kernel's
    (``ZMQInteractiveShell``). A program that merely imported ipykernel or IPython is not one."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _progress_bar(enabled: bool, total: int | None, description: str) -> Any:
    """A tqdm bar where someone watches (a terminal or a notebook), else ``None``."""
    if not enabled:
        return None
    in_notebook = _in_notebook()
    if not in_notebook and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    try:
        if in_notebook:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="batch", leave=True, dynamic_ncols=True)


def _postfix(meter: _Meter, seconds: float) -> dict[str, str]:
    postfix = {"loss": f"{meter.loss:.4f}"}
    if meter.accuracy is not None:
        postfix["acc"] = f"{meter.accuracy:.3f}"
    postfix["ex/s"] = f"{meter.rate(seconds):,.0f}"
    return postfix


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


# ----- evaluate --------------------------------------------------------------------------------
def evaluate(model: Any, loader: Iterable[Any], loss: Callable[..., Tensor] | None = None, *,
             progress: bool = False) -> dict[str, Any]:
    """The model's mean loss and accuracy over ``loader``, in eval mode without gradients.

    Returns ``{"loss", "accuracy", "examples_per_s", "count"}`` (``accuracy`` is ``None`` when
    the targets are not class labels). The loss defaults to cross-entropy; it must average over
    the batch. The model's train/eval mode is put back afterwards.

    >>> evaluate(model, test_loader)
    {'loss': 0.41, 'accuracy': 0.87, 'examples_per_s': 5210.3, 'count': 10000}
    """
    loss_fn = _default_loss() if loss is None else loss
    was_training = bool(getattr(model, "training", False))
    model.eval()
    meter = _Meter()
    bar = _progress_bar(progress, _length(loader), "evaluate")
    start = time.perf_counter()
    try:
        with no_grad():
            for batch in loader:
                inputs, targets = _unpack(batch, "evaluate")
                output = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
                meter.add(float(loss_fn(output, targets).item()), _correct(output, targets),
                          int(targets.shape[0]))
                if bar is not None:
                    bar.set_postfix(_postfix(meter, time.perf_counter() - start), refresh=False)
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    seconds = time.perf_counter() - start
    return {"loss": meter.loss, "accuracy": meter.accuracy,
            "examples_per_s": meter.rate(seconds), "count": meter.count}


def _default_loss() -> Callable[..., Tensor]:
    from wally.nn.loss import CrossEntropyLoss

    return CrossEntropyLoss()


# ----- fit -------------------------------------------------------------------------------------
def _rng_states(loader: Any) -> dict[str, Any]:
    return {"wally": get_rng_state(), "loader": loader_rng_state(loader)}


def _set_rng_states(loader: Any, states: Mapping[str, Any]) -> None:
    set_rng_state(states["wally"])
    set_loader_rng_state(loader, states.get("loader"))


def _restore(path: str, what: str, restore: Callable[..., Any], *args: Any) -> None:
    """Call ``restore(*args)``; a state numpy or the loader refuses is the checkpoint's fault."""
    try:
        restore(*args)
    except CheckpointError:
        raise
    except Exception as error:  # numpy raises TypeError, ValueError or KeyError on bad states
        raise CheckpointError(f"{path}: its {what} cannot be restored ({type(error).__name__}: "
                              f"{str(error)[:200]})") from None


_NUMBER = (int, float)


def _fit_state(checkpoint: Any, done_epochs: int, batches: int | None) -> dict[str, Any]:
    """The loop's own state in ``checkpoint``, refused (:class:`CheckpointError` naming the
    file and the field) unless every part has the type and range a saved run gives it."""
    path = checkpoint.path
    state = checkpoint.extra.get(_FIT_KEY) or {}

    def bad(field: str, value: Any, expected: str) -> CheckpointError:
        shown = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "huge"
        return CheckpointError(f"{path}: its training state's {field} is "
                               f"{shown[:80]}; expected {expected}")

    if not isinstance(state, dict):
        raise bad("record", state, "a JSON object")
    records = state.get("history", [])
    if not isinstance(records, list) or len(records) > done_epochs:
        raise bad("history", records if not isinstance(records, list) else
                  f"{len(records)} records", f"a list of at most {done_epochs} epoch records")
    for number, record in enumerate(records):
        if not isinstance(record, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, _NUMBER))
                for k, v in record.items()):
            raise bad(f"history[{number}]", record, "an object of numbers")
    batches_done = state.get("batches_done", 0)
    if isinstance(batches_done, bool) or not isinstance(batches_done, int) or batches_done < 0 \
            or (batches is not None and batches_done > batches):
        limit = f" from 0 to {batches} (the batches in an epoch)" if batches is not None else ""
        raise bad("batches_done", batches_done, f"an integer{limit}")
    meter = state.get("meter")
    if meter is not None and not (isinstance(meter, dict) and all(
            isinstance(meter.get(k, 0), _NUMBER) for k in ("loss_sum", "count", "seconds", "lr"))
            and (meter.get("correct") is None or isinstance(meter.get("correct"), int))):
        raise bad("meter", meter, "an object of numbers")
    epoch_rng = state.get("epoch_start_rng")
    if epoch_rng is not None and not (isinstance(epoch_rng, dict)
                                      and isinstance(epoch_rng.get("wally"), dict)):
        raise bad("epoch_start_rng", epoch_rng, "an object holding the RNG states")
    return state


def _write_metrics(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    text = "".join(json.dumps(record) + "\n" for record in records)
    atomic_write(path, text.encode("utf-8"))


def _check_fit_arguments(epochs: int, scheduler_step: str, checkpoint_dir: Any,
                         checkpoint_every: int | None, resume: bool) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if checkpoint_every is not None and (
        isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
        or checkpoint_every < 1
    ):
        raise ValueError(
            f"fit: checkpoint_every must be a positive number of steps, got {checkpoint_every!r}"
        )
    if checkpoint_dir is None and (resume or checkpoint_every is not None):
        option = "resume=True" if resume else "checkpoint_every"
        raise ValueError(f"fit: {option} needs checkpoint_dir, the folder of the checkpoint")


def fit(
    model: Any,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any] | None = None,
    *,
    optimizer: Any,
    epochs: int,
    loss: Callable[..., Tensor] | None = None,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    callbacks: Sequence[Callable[[dict[str, Any]], Any]] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_extra: Mapping[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    metrics_path: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    max_grad_norm: float | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs over ``train_loader``; return the :class:`History`.

    Every batch must be a pair ``(inputs, targets)``. Each step runs forward, ``loss``
    (cross-entropy by default; it must average over the batch), ``zero_grad``, backward,
    optional gradient clipping to ``max_grad_norm``, and ``optimizer.step()``. ``scheduler``
    steps once per epoch (``scheduler_step="epoch"``, after validation) or after every
    optimizer step (``"batch"``, for ``OneCycleLR``). The model is in train mode while it
    trains and in eval mode, under ``no_grad``, on ``val_loader``.

    Args:
        callbacks: called after each epoch with its record (the dict in the history); one may
            raise :class:`StopTraining` to end training there.
        checkpoint_dir: where ``checkpoint.safetensors`` is written (atomically) after every
            epoch and, with ``checkpoint_every``, every that many optimizer steps.
        checkpoint_extra: JSON-like values stored in every checkpoint's ``extra`` (beside the
            loop's own state under ``"fit"``).
        resume: continue from ``checkpoint_dir``'s checkpoint, exactly (weights, optimizer,
            scheduler, RNG states, position in the epoch, history); without a checkpoint there,
            training starts from scratch. ``epochs`` is the total, counting resumed epochs.
        progress: show a progress bar per epoch where one can be seen (a terminal or a notebook,
            with tqdm installed); nothing is printed otherwise.
        metrics_path: a file that gets one JSON line per epoch (flushed and fsync'ed), begun
            afresh by a new run and rewritten from the checkpoint's history on resume.
        seed: ``wally.manual_seed(seed)`` before training (not when resuming, which restores the
            saved RNG states instead). A loader with a generator of its own keeps it.

    Under ``mpiexec -n K`` (see :mod:`wally.distributed`) every rank runs ``fit`` on its own
    loader (a :class:`~wally.distributed.DistributedSampler` gets ``set_epoch`` each epoch), the
    gradients are averaged over the ranks after every backward pass, and only rank 0 shows
    progress, validates, writes checkpoints and metrics (its train loss and accuracy are those
    of its shard; ``examples_per_s`` counts all ranks). A callback's :class:`StopTraining` on
    any rank stops every rank. Alone, none of this costs anything or changes a result.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the last checkpoint is kept).

    >>> history = fit(model, train_loader, test_loader, optimizer=SGD(model.parameters(), 0.1),
    ...               epochs=10, checkpoint_dir="run", metrics_path="run/metrics.jsonl")
    """
    _check_fit_arguments(epochs, scheduler_step, checkpoint_dir, checkpoint_every, resume)
    extra = dict(checkpoint_extra or {})
    if _FIT_KEY in extra:
        raise ValueError(f"fit: checkpoint_extra may not use the key {_FIT_KEY!r}, which holds "
                         "the loop's own state")
    loss_fn = _default_loss() if loss is None else loss
    # Under mpiexec every rank trains; only rank 0 shows progress, validates and writes files.
    main_process = is_main_process()
    progress = progress and main_process
    checkpoint_path = None
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME
    metrics_file = None if metrics_path is None or not main_process else Path(metrics_path)

    history = History()
    done_epochs, step, batches_done = 0, 0, 0
    meter_state: Mapping[str, Any] | None = None
    epoch_start_rng: Mapping[str, Any] | None = None
    saved_rng: Any = None
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, model, optimizer, scheduler)
        done_epochs, step = int(checkpoint.epoch or 0), int(checkpoint.step or 0)
        state = _fit_state(checkpoint, done_epochs, _length(train_loader))
        history = History(state.get("history", ()))
        batches_done = int(state.get("batches_done", 0))
        meter_state, epoch_start_rng = state.get("meter"), state.get("epoch_start_rng")
        saved_rng = checkpoint
        _restore(checkpoint.path, "RNG state", checkpoint.restore_rng, train_loader)
        if batches_done and epoch_start_rng is not None:  # tried now, not mid-loop
            now = _rng_states(train_loader)
            _restore(checkpoint.path, "epoch_start_rng", _set_rng_states, train_loader,
                     epoch_start_rng)
            _set_rng_states(train_loader, now)
    else:
        if seed is not None:
            manual_seed(seed)
    if metrics_file is not None:
        _write_metrics(metrics_file, history.records)

    def save(epoch_rng: Mapping[str, Any] | None, meter: Mapping[str, Any] | None) -> None:
        if checkpoint_path is None or not main_process:
            return
        state = {"history": history.records, "batches_done": batches_done, "meter": meter,
                 "epoch_start_rng": epoch_rng}
        save_checkpoint(checkpoint_path, model, optimizer, scheduler, epoch=done_epochs,
                        step=step, extra={**extra, _FIT_KEY: state}, loader=train_loader)

    for epoch in range(done_epochs + 1, epochs + 1):
        set_epoch(train_loader, epoch)  # a DistributedSampler's order for this epoch
        if batches_done and epoch_start_rng is not None:
            rng_at_start = epoch_start_rng  # resuming mid-epoch: replay this epoch's shuffle
            _set_rng_states(train_loader, rng_at_start)
        else:
            rng_at_start, batches_done = _rng_states(train_loader), 0
        meter = _Meter(meter_state)
        lr = (meter_state or {}).get("lr", optimizer.param_groups[0]["lr"])
        meter_state = None
        model.train()
        batches = iter(train_loader)
        for _ in range(batches_done):
            next(batches)
        if saved_rng is not None:
            if batches_done:
                saved_rng.restore_rng(train_loader)
            saved_rng = None

        total = _length(train_loader)
        bar = _progress_bar(progress, total, f"epoch {epoch}/{epochs}")
        if bar is not None and batches_done:
            bar.update(batches_done)
        start = time.perf_counter() - meter.seconds
        try:
            for batch in batches:
                inputs, targets = _unpack(batch, "fit")
                output = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
                batch_loss = loss_fn(output, targets)
                value = float(batch_loss.item())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"fit: the loss became {value} at epoch {epoch}, step {step + 1}; "
                        "try a lower learning rate (the last checkpoint is left as it was)"
                    )
                optimizer.zero_grad()
                batch_loss.backward()
                after_backward(model)  # the mean gradient over the ranks (none alone)
                if max_grad_norm is not None:
                    from wally.nn.utils import clip_grad_norm_

                    clip_grad_norm_(model.parameters(), max_grad_norm)
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                step += 1
                batches_done += 1
                meter.add(value, _correct(output, targets), int(targets.shape[0]))
                if bar is not None:
                    bar.set_postfix(_postfix(meter, time.perf_counter() - start), refresh=False)
                    bar.update(1)
                if checkpoint_every is not None and step % checkpoint_every == 0:
                    meter.seconds = time.perf_counter() - start
                    save(rng_at_start, {**meter.state(), "lr": lr})
            seconds = time.perf_counter() - start
            record: dict[str, Any] = {
                "epoch": epoch, "step": step, "lr": lr,
                "train_loss": meter.loss, "train_accuracy": meter.accuracy,
                # Rank 0's shard stands for the epoch; all K shards are the same size.
                "examples_per_s": meter.rate(seconds) * world_size(), "seconds": seconds,
            }
            if val_loader is not None and main_process:
                result = evaluate(model, val_loader, loss_fn)
                record["val_loss"], record["val_accuracy"] = result["loss"], result["accuracy"]
            if bar is not None:
                postfix = _postfix(meter, seconds)
                if "val_loss" in record:
                    postfix["val_loss"] = f"{record['val_loss']:.4f}"
                    if record["val_accuracy"] is not None:
                        postfix["val_acc"] = f"{record['val_accuracy']:.3f}"
                bar.set_postfix(postfix)
        finally:
            if bar is not None:
                bar.close()
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        history.append(record)
        done_epochs, batches_done = epoch, 0
        save(None, None)
        if metrics_file is not None:
            append_line(metrics_file, json.dumps(record))
        stop = False
        try:
            for callback in callbacks:
                callback(dict(record))
        except StopTraining:
            stop = True
        if any_process(stop):  # every rank stops together, or the others would wait for it
            break
    model.train()
    return history

