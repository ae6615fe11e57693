"""``wally train``: train a model of the zoo on a dataset, with checkpoints and curves."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import wally_cli
from wally.cli import CommandError, printable
from wally.cli._datasets import DATASETS, GRAPH_DATASETS, TEXT_DATASET_NAMES, TEXT_DATASETS
from wally.cli._sequences import dataset_name

OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop"]
SCHEDULERS = ["none", "step", "cosine", "onecycle"]
# The settings that decide what a run computes: a resumed run must repeat them.
_RUN_SETTINGS = ["model", "dataset", "batch_size", "lr", "optimizer", "momentum",
                 "weight_decay", "scheduler", "warmup_epochs", "seed", "limit", "input_size",
                 "ranks"]
_SETTING_DEFAULTS = {"ranks": 1}  # for config.json files written before the setting existed

EPILOG = """\
files written to --out (default runs/MODEL-DATASET):
  config.json               the settings, the model config, input size and class names
  checkpoint.safetensors    weights, optimizer, scheduler and RNG states (after every epoch,
                            and every --checkpoint-every steps)
  metrics.jsonl             one JSON object per epoch (loss, accuracy, examples/s, lr)
  curves.png                loss and accuracy per epoch (needs matplotlib)
with --tensorboard DIR, TensorBoard event files in DIR (tensorboard --logdir DIR)

The test split is evaluated after every epoch, as d2l's train_ch6 does. Images are scaled to
[0, 1] and shaped to the model's input (digits: 8x8 upsampled x3 and padded to 28x28 for LeNet;
others resized bilinearly). --resume continues DIR's run exactly where it stopped; it must be
given the same settings (only --epochs may grow, when --scheduler is none).

examples:
  wally train lenet_modern --dataset digits --epochs 5 --optimizer adam
  wally train lenet --dataset fashion-mnist --download --lr 0.9 --batch-size 256
  wally train resnet18 --dataset cifar10 --scheduler onecycle --lr 0.05 --out runs/r18
  mpiexec -n 4 wally train lenet --dataset fashion-mnist --lr 0.9   # data-parallel, 4 ranks
  wally train gcn --dataset karate    # a graph: full-batch Adam (lr 0.01, decay 5e-4), 200 epochs
  wally train lightgcn --dataset debian  # recommendation: LightGCN against BPR-MF and most-popular

Under mpiexec -n K (pip install 'wally-cnn[mpi]'), --batch-size is the global batch, split
evenly over the K ranks; only rank 0 prints and writes files. --resume needs the same K.
"""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def seed_int(text: str) -> int:
    """A seed as PyTorch takes one: an integer from -2**63 to 2**64 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not -(1 << 63) <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"expected an integer from -2**63 to 2**64 - 1, got "
                                         f"{text[:40]}")
    return value


def input_size_value(text: str) -> int:
    """argparse type for ``--input-size``: a positive integer of at most MAX_INPUT_VALUES, the
    longest a series or a text may be (``check_input_size``'s bound for 1-D models). An image
    model's side is bounded further once the model is known (:func:`check_input_side`)."""
    from wally.models.registry import MAX_INPUT_VALUES

    value = positive_int(text)
    if value > MAX_INPUT_VALUES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_INPUT_VALUES:,} (time steps "
                                         f"or characters; an image's side at most 4,096 "
                                         f"pixels), got {text[:40]}")
    return value


def check_input_side(args: argparse.Namespace) -> None:
    """Bound ``--input-size`` by the model's input rank: an image model's side by
    MAX_INPUT_SIDE, a series or text model's length by the value-count limit (the type's)."""
    from wally.models.registry import MAX_INPUT_SIDE, input_spatial_dims

    size = getattr(args, "input_size", None)
    if size is not None and input_spatial_dims(args.model) == 2 and size > MAX_INPUT_SIDE:
        args.parser.error(f"argument --input-size: expected at most {MAX_INPUT_SIDE:,} pixels "
                          f"for {args.model} (an image model: the side of its input), got "
                          f"{size}")


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model of the zoo on a dataset",
        description="Train a model from wally.models on a dataset, showing a progress bar,\n"
                    "writing checkpoints, metrics and curves, and report its test accuracy.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a model of wally.models: lenet, lenet_modern, alexnet, vgg11, nin, "
                             "googlenet, resnet18, resnet18_cifar, densenet (wally demo trains "
                             "wally_finder)")
    parser.add_argument("--dataset", required=True, type=dataset_name, metavar="NAME",
                        help="one of: " + ", ".join(
                            [f"{name} ({info.description})" for name, info in DATASETS.items()]
                            + [f"{name} ({text})" for name, text in GRAPH_DATASETS.items()])
                        + "; text, for textcnn: " + ", ".join(
                            f"{name} ({text})" for name, text in TEXT_DATASETS.items())
                        + "; or ucr/<Name> (a UCR/UEA time-series dataset, .ts files in "
                          "--data-dir/UCR/<Name>/, for fcn1d and tcn)")
    parser.add_argument("--epochs", type=non_negative_int, default=None,
                        help="epochs in all, counting resumed ones (default 10; 150 for ucr/; "
                             "200 for a graph; 10 for text)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="default 256, as in d2l; 16 for ucr/, 64 for text")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="learning rate (default 0.1 for sgd, 0.001 for the others)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                        help="default sgd; adam for ucr/ and text")
    parser.add_argument("--momentum", type=non_negative_float, default=0.0,
                        help="SGD momentum (default 0, as in d2l)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=None,
                        help="L2 penalty (default 0; 0.01 for adamw, as in PyTorch)")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default=None,
                        help="step: lr x0.1 after each third of the epochs; cosine: to 0 over "
                             "the epochs; onecycle: per batch, peaking at --lr (default none; "
                             "cosine for ucr/ and text)")
    parser.add_argument("--warmup-epochs", type=non_negative_int, default=0,
                        help="raise the lr linearly over this many epochs first (onecycle: the "
                             "share of the cycle spent rising)")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seeds the weights, the shuffling and dropout (default 0; as in "
                             "PyTorch, a negative seed counts modulo 2**64)")
    parser.add_argument("--input-size", type=input_size_value, default=None, metavar="N",
                        help="side of the square input the model is built for, at most 4,096 "
                             "pixels (default: the model's own, 28 for LeNet, 224 for "
                             "AlexNet/VGG/NiN, 96 for GoogLeNet/ResNet/DenseNet); for textcnn "
                             "the characters of each training text read at once (default 128; "
                             "evaluation reads whole texts), at most 4,194,304")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="where the dataset files are (default ~/.cache/wally)")
    parser.add_argument("--download", action="store_true",
                        help="download missing dataset files (checksums verified)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the run's files (default runs/MODEL-DATASET)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out exactly where its checkpoint stopped")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                        help="also save a checkpoint every N optimizer steps")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="use only the first N training (and at most N test) examples, for "
                             "quick runs")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also log to TensorBoard event files in DIR each epoch: loss, "
                             "accuracy, lr, weight and gradient histograms, the first conv's "
                             "kernels, and the model's graph (pip install tensorboard; view "
                             "with tensorboard --logdir DIR)")
    parser.set_defaults(func=run, parser=parser)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as JSON values (``config.json``'s ``"settings"``); ``ranks`` is the
    number of processes under ``mpiexec`` (1 without)."""
    from wally.distributed import world_size

    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 0.001)
    decay = args.weight_decay
    if decay is None:
        decay = 0.01 if args.optimizer == "adamw" else 0.0
    return {"model": args.model, "dataset": args.dataset, "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": lr, "optimizer": args.optimizer,
            "momentum": args.momentum, "weight_decay": decay,
            "scheduler": args.scheduler, "warmup_epochs": args.warmup_epochs,
            "seed": args.seed, "limit": args.limit, "input_size": args.input_size,
            "ranks": world_size()}


def _differences(saved: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    must_match = _RUN_SETTINGS + (["epochs"] if settings["scheduler"] != "none" else [])
    differ = []
    for key in must_match:
        was = saved.get(key, _SETTING_DEFAULTS.get(key))
        if was != settings[key]:
            option = "mpiexec -n" if key == "ranks" else f"--{key.replace('_', '-')}"
            differ.append(f"{option} {printable(str(was)[:40])} (given {settings[key]})")
    return differ


def _check_resumable(out: Path, settings: dict[str, Any], checkpoint_path: Path) -> None:
    """Refuse to resume with settings other than the run's own (the result would differ):
    those of ``config.json``, or, without one, those the checkpoint records."""
    from wally.io.checkpoint import CheckpointError, read_metadata
    from wally.io.files import read_text

    config_path = out / "config.json"
    if config_path.is_file():
        try:
            saved = json.loads(read_text(config_path, "config", max_bytes=1 << 20))["settings"]
            if not isinstance(saved, dict):
                raise TypeError("its settings are not a JSON object")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
            raise CommandError(f"--resume: cannot read {config_path} ({error})") from None
        source = f"the run in {out} was started with "
    elif checkpoint_path.exists():
        try:
            extra = read_metadata(checkpoint_path).get("extra")
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        saved = extra.get("settings") if isinstance(extra, dict) else None
        if not isinstance(saved, dict):
            saved = {}
            model_config = read_metadata(checkpoint_path).get("model_config")
            if isinstance(model_config, dict):
                saved["model"] = model_config.get("name")
            if isinstance(extra, dict):
                saved["dataset"] = extra.get("dataset")
            known = [k for k in ("model", "dataset") if saved.get(k) is not None]
            differ = [d for d in _differences({**settings, **saved}, settings)]
            if differ:
                raise CommandError(
                    f"--resume: {checkpoint_path} (without config.json beside it) holds a run "
                    "with " + ", ".join(differ) + "; give the same settings to resume it")
            if not known:
                raise CommandError(
                    f"--resume: {checkpoint_path} records no settings and {config_path} is "
                    "missing, so wally cannot check that this run continues it; start a new "
                    "run in another --out")
            return
        source = (f"{checkpoint_path} (config.json is missing) holds a run started with ")
    else:
        return
    differ = _differences(saved, settings)
    if differ:
        raise CommandError(
            "--resume: " + source + ", ".join(differ)
            + "; give the same settings to resume it, or another --out for a new run"
        )


def build_model(name: str, channels: int, input_size: int | None, num_classes: int) -> Any:
    from wally.models import get_model, list_models

    kwargs: dict[str, Any] = {"in_channels": channels, "num_classes": num_classes}
    if input_size is not None:
        from wally.models.registry import check_input_size

        try:
            check_input_size([channels, input_size, input_size], "--input-size")
        except ValueError as error:
            raise CommandError(str(error)) from None
        kwargs["input_size"] = input_size
    try:
        return get_model(name, **kwargs)
    except TypeError as error:
        raise CommandError(
            f"model {name!r} cannot be built from the command line ({error}); pick one of "
            + ", ".join(list_models(classifiers=True))
        ) from None
    except ValueError as error:
        raise CommandError(str(error)) from None


def build_optimizer(settings: dict[str, Any], parameters: Any) -> Any:
    from wally import optim

    name, lr, decay = settings["optimizer"], settings["lr"], settings["weight_decay"]
    if name == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=settings["momentum"], weight_decay=decay)
    kind = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}[name]
    return kind(parameters, lr=lr, weight_decay=decay)


def build_scheduler(settings: dict[str, Any], optimizer: Any,
                    steps_per_epoch: int) -> tuple[Any, str]:
    """The scheduler and when it steps (``"epoch"`` or ``"batch"``)."""
    from wally.optim import lr_scheduler

    name, epochs, warmup = settings["scheduler"], settings["epochs"], settings["warmup_epochs"]
    if name == "onecycle":
        total = max(1, epochs * steps_per_epoch)
        pct_start = min(0.9, warmup / epochs) if warmup and epochs else 0.3
        return lr_scheduler.OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=total,
                                       pct_start=pct_start), "batch"
    main_epochs = max(1, epochs - warmup)
    main: Any = None
    if name == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=max(1, main_epochs // 3), gamma=0.1)
    elif name == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_epochs)
    if not warmup:
        return main, "epoch"
    warm = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0,
                                 total_iters=warmup)
    if main is None:
        return warm, "epoch"
    return lr_scheduler.SequentialLR(optimizer, [warm, main], milestones=[warmup]), "epoch"


def _epoch_line(epochs: int) -> Any:
    def report(record: dict[str, Any]) -> None:
        parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['train_loss']:.4f}"]
        if record.get("train_accuracy") is not None:
            parts.append(f"train acc {record['train_accuracy']:.4f}")
        if record.get("val_accuracy") is not None:
            parts.append(f"test acc {record['val_accuracy']:.4f}")
        parts += [f"{record['examples_per_s']:,.0f} examples/s", f"lr {record['lr']:.4g}"]
        print("  ".join(parts), flush=True)

    return report


def write_curves(path: Path, records: list[dict[str, Any]]) -> bool:
    """Plot loss and accuracy per epoch to ``path`` (PNG, atomically); False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return False
    import io

    from wally.io import atomic_write

    epochs = [r["epoch"] for r in records]
    figure = Figure(figsize=(9, 3.5), layout="tight")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric, title in ((loss_axes, "loss", "loss"),
                                (accuracy_axes, "accuracy", "accuracy")):
        for split, label, style in (("train", "train", "-o"), ("val", "test", "--s")):
            values = [r.get(f"{split}_{metric}") for r in records]
            if any(v is not None for v in values):
                axes.plot(epochs, [float("nan") if v is None else v for v in values], style,
                          label=label, markersize=3)
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())
    return True


def _unwritable(out: Path, error: OSError) -> str:
    reason = error.strerror or str(error)
    kept = (f"; the last checkpoint, {out / 'checkpoint.safetensors'}, is left as it was"
            if (out / "checkpoint.safetensors").exists() else "")
    return f"cannot write to {out}: {reason}{kept}"


def _created_folders(out: Path) -> list[Path]:
    """The folders ``out.mkdir(parents=True)`` is about to create, deepest first."""
    missing = []
    folder = out
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_unused(created: list[Path], lock: Any) -> None:
    """After a failed run: remove the folders it created if they hold nothing but its lock."""
    from wally.io.lock import LOCK_NAME

    if not created or lock is None:
        return
    out = created[0]
    try:
        leftovers = [entry.name for entry in out.iterdir() if entry.name != LOCK_NAME]
    except OSError:
        return
    if leftovers:
        lock.release()
        return
    lock.release(remove=True)
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def _tensorboard_writer(args: argparse.Namespace, out: Path, model: Any,
                        input_size: list[int]) -> Any:
    """``--tensorboard DIR``'s writer, with the model's graph logged; None without the flag.
    A resumed run sets ``purge_step`` to its first epoch, so that TensorBoard hides whatever
    DIR holds from that epoch on (an earlier run's), and each epoch shows once."""
    if args.tensorboard is None:
        return None
    try:
        from wally.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise CommandError(f"--tensorboard: {error}") from None
    purge_step = None
    checkpoint_path = out / "checkpoint.safetensors"
    if args.resume and checkpoint_path.exists():
        from wally.io.checkpoint import CheckpointError, read_metadata

        try:
            epoch = read_metadata(checkpoint_path).get("epoch")
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        # Anything but a plain count is left to fit, which refuses the checkpoint clearly.
        if isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch < 1 << 62:
            purge_step = epoch + 1
    try:
        writer = SummaryWriter(args.tensorboard, purge_step=purge_step)
    except ImportError as error:
        raise CommandError(f"--tensorboard: {error}") from None
    except OSError as error:
        raise CommandError(f"--tensorboard: cannot write to {args.tensorboard}: "
                           f"{error.strerror or error}") from None
    import wally

    writer.add_graph(model, wally.zeros(1, *input_size))  # traced in eval mode: no side effects
    return writer


def _has_batch_norm(model: Any) -> bool:
    return any(type(m).__name__.startswith("BatchNorm") for m in model.modules())


def run(args: argparse.Namespace) -> int:
    from wally.cli._text import TEXT_MODELS
    from wally.models import list_models
    from wally.models.registry import suggest

    if args.dataset in GRAPH_DATASETS:
        from wally.cli._graphs import train_graph

        return train_graph(args)

    text = args.dataset in TEXT_DATASETS
    trainable = TEXT_MODELS if text else list_models(classifiers=True)
    if args.model not in trainable:
        why = (" (a detector: `wally demo` trains it)" if args.model == "wally_finder" else
               " (a graph model: --dataset " + ", ".join(GRAPH_DATASETS) + ")"
               if args.model in ("gcn", "lightgcn") else
               f" (a text model: train it on {' or '.join(TEXT_DATASET_NAMES)})"
               if args.model in TEXT_MODELS else
               " (an image model: train textcnn on a text dataset)" if text else
               " (it needs an arch, so build it in Python)" if args.model in list_models()
               else suggest(args.model, trainable))
        args.parser.error(f"argument MODEL: unknown model {args.model!r}{why}; choose from "
                          + ", ".join(trainable))
    from wally.cli import _sequences

    _sequences.check_model(args.model, args.dataset)
    check_input_side(args)
    _sequences.apply_recipe(args)
    from wally.distributed import is_main_process
    from wally.io.checkpoint import _safetensors_numpy
    from wally.io.lock import FolderLock, FolderLockedError
    from wally.train import CHECKPOINT_NAME

    _safetensors_numpy()  # checkpoints need it: say so now, not after the first epoch

    settings = settings_of(args)
    main_process = is_main_process()  # under mpiexec only rank 0 prints and writes files
    out = Path(args.out if args.out is not None else
               f"runs/{args.model}-{args.dataset.replace('/', '-')}")
    created = _created_folders(out) if main_process else []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    lock = None
    try:
        if main_process:  # one run per folder, held until this process ends
            try:
                lock = FolderLock(out, "wally train run").acquire()
            except FolderLockedError as error:
                created = []
                raise CommandError(str(error)) from None
        checkpoint_path = out / CHECKPOINT_NAME
        if args.resume:
            _check_resumable(out, settings, checkpoint_path)
            if not checkpoint_path.exists() and main_process:
                print(f"wally train: no checkpoint in {out} yet: starting from scratch",
                      file=sys.stderr)
        elif checkpoint_path.exists():
            created = []
            raise CommandError(f"{out} already holds a run ({CHECKPOINT_NAME}); pass --resume "
                               "to continue it, or choose another --out")
        return _train(args, settings, out, main_process)
    except BaseException:
        _remove_if_unused(created, lock)
        raise
    finally:
        if lock is not None:  # removed while held: a run killed instead leaves it, unlocked
            lock.release(remove=True)


def _train(args: argparse.Namespace, settings: dict[str, Any], out: Path,
           main_process: bool) -> int:
    import wally
    from wally.cli import _images, _sequences, _text
    from wally.data import DataLoader
    from wally.distributed import broadcast_parameters, distributed_loader, world_size
    from wally.io import atomic_write
    from wally.models import model_config
    from wally.train import evaluate, fit

    wally.manual_seed(settings["seed"])
    loader_kwargs: dict[str, Any] = {}
    text_extra: dict[str, Any] = {}  # a text model's vocabulary and length
    if _sequences.is_sequence(args.dataset):  # series: padded batches ((x, lengths), y)
        from wally.data import pad_collate

        train_set, test_set, model, input_size = _sequences.prepare(args)
        loader_kwargs["collate_fn"] = pad_collate
        broadcast_parameters(model)
    elif args.dataset in TEXT_DATASETS:
        model, train_set, test_set, text_extra = _text.prepare(args)
        input_size = [int(n) for n in model.input_size]
        broadcast_parameters(model)
    else:
        info = DATASETS[args.dataset]
        model = build_model(args.model, info.channels, args.input_size, num_classes=10)
        input_size = [int(n) for n in model.input_size]
        broadcast_parameters(model)  # every rank starts from rank 0's weights
        train_set = _images.load(args.dataset, True, input_size, data_dir=args.data_dir,
                                 download=args.download, limit=args.limit)
        test_set = _images.load(args.dataset, False, input_size, data_dir=args.data_dir,
                                download=args.download, limit=args.limit)
    if len(train_set) == 0:
        raise CommandError(f"the {args.dataset} training split is empty: there is nothing "
                           "to train on")
    # --batch-size is the global batch: each of K ranks trains on batch-size / K of it.
    loader_seed = settings["seed"] % (1 << 64)
    try:
        train_loader = distributed_loader(train_set, args.batch_size, seed=loader_seed,
                                          **loader_kwargs)
    except ValueError as error:
        raise CommandError(f"--batch-size: {error}") from None
    if _has_batch_norm(model):
        # Batch norm cannot normalise one example in training (PyTorch refuses it too): drop
        # a last batch of one, as Keras and Lightning users expect, and refuse batches of one.
        per_rank = args.batch_size // world_size()
        sampler = getattr(train_loader, "sampler", None)
        examples = len(sampler) if sampler is not None else len(train_set)
        if per_rank == 1 or examples == 1:
            what = (f"--batch-size {args.batch_size}" + (f" on {world_size()} ranks"
                                                         if world_size() > 1 else "")
                    if per_rank == 1 else f"a training set of 1 image ({args.dataset}"
                    + (f", --limit {args.limit}" if args.limit else "") + ")")
            raise CommandError(f"{args.model} has batch norm, which needs at least 2 images "
                               f"per batch in training, and {what} gives batches of one")
        if examples % per_rank == 1:
            train_loader = distributed_loader(train_set, args.batch_size, seed=loader_seed,
                                              drop_last=True, **loader_kwargs)
            if main_process:
                print(f"wally train: the last batch of each epoch would hold 1 image, which "
                      f"batch norm cannot train on: it is dropped ({examples - 1:,} of "
                      f"{examples:,} images per epoch)", file=sys.stderr)
    if args.dataset in TEXT_DATASETS:
        test_loader = _text.eval_loader(test_set, args.batch_size)
    else:
        test_loader = DataLoader(test_set, batch_size=args.batch_size, **loader_kwargs)
    unit = ("series" if _sequences.is_sequence(args.dataset) else
            "texts" if args.dataset in TEXT_DATASETS else "images")
    optimizer = build_optimizer(settings, model.parameters())
    scheduler, scheduler_step = build_scheduler(settings, optimizer, len(train_loader))

    # Made before any file is written, so that a bad --tensorboard DIR leaves no run behind.
    writer = _tensorboard_writer(args, out, model, input_size) if main_process else None
    config = {"settings": settings, "model_config": model_config(model),
              "input_size": input_size, "classes": train_set.classes,
              "wally_version": wally.__version__, **text_extra}
    if main_process:
        try:
            atomic_write(out / "config.json",
                         (json.dumps(config, indent=2) + "\n").encode("utf-8"))
        except OSError as error:  # a read-only folder, a full disk
            if writer is not None:
                writer.close()
            raise CommandError(_unwritable(out, error)) from None
        ranks = f" on {world_size()} ranks" if world_size() > 1 else ""
        print(f"wally train: {args.model} on {args.dataset}: {len(train_set):,} training and "
              f"{len(test_set):,} test {unit}, input {'x'.join(map(str, input_size))}, "
              f"{settings['epochs']} epochs, {settings['optimizer']} lr {settings['lr']:g}"
              f"{ranks}; writing {out}", flush=True)
    import importlib.util

    bar_shown = sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None
    # After each epoch (its checkpoint saved): a Ctrl-C that something swallowed stops here.
    callbacks: list[Any] = [lambda record: wally_cli.check()]
    if main_process and not bar_shown:
        callbacks.append(_epoch_line(settings["epochs"]))
    if writer is not None:
        from wally.utils.tensorboard import TensorBoardCallback

        callbacks.append(TensorBoardCallback(writer, model))
    try:
        history = fit(
            model, train_loader, test_loader, optimizer=optimizer, epochs=settings["epochs"],
            scheduler=scheduler, scheduler_step=scheduler_step, callbacks=callbacks,
            checkpoint_dir=out, checkpoint_every=args.checkpoint_every, resume=args.resume,
            metrics_path=out / "metrics.jsonl",
            checkpoint_extra={"dataset": args.dataset, "input_size": input_size,
                              "classes": train_set.classes, "settings": settings,
                              **text_extra},
        )
    except OSError as error:  # atomic writes leave the last checkpoint as it was
        raise CommandError(_unwritable(out, error)) from None
    finally:
        if writer is not None:
            writer.close()

    if not main_process:
        return 0
    try:
        curves_written = not history.records or write_curves(out / "curves.png", history.records)
    except OSError as error:
        raise CommandError(_unwritable(out, error)) from None
    if not curves_written:
        print("wally train: curves.png not written: matplotlib is not installed "
              "(pip install 'wally-cnn[train]')", file=sys.stderr)
    final = evaluate(model, test_loader)
    throughput = history.records[-1]["examples_per_s"] if history.records else 0.0
    accuracy = final["accuracy"] if final["accuracy"] is not None else float("nan")
    print(f"test accuracy {accuracy:.4f}  test loss {final['loss']:.4f}  "
          f"train {throughput:,.0f} examples/s  test {final['examples_per_s']:,.0f} "
          f"examples/s  ({len(test_set):,} test {unit})", flush=True)
    return 0
