"""Run the d2l book's PyTorch cells (``tests/d2l/chapters/``) on wally or on PyTorch.

    python tests/d2l/runner.py --backend wally [--train] [--seed N] --out report.json CHAPTER...

With ``--backend wally`` the first thing that runs is ``wally.alias_torch()``, so every
``import torch`` / ``import torchvision`` in d2l and in the cells resolves to wally, as
``wally run`` does. With ``--backend torch`` the real PyTorch runs the same cells (the oracle for
what they print); torchvision is replaced by an empty module there when it is not installed, which
only the data-loading cells would need.

Each cell runs in the chapter's one namespace, as in the book's notebook, with its printed output
captured. The namespace has the ``tab`` object d2lbook gives a PyTorch build
(``tab.selected('pytorch', ...)`` is true). A cell that trains (``trainer.fit``) is skipped,
except LeNet's with ``--train``, which runs one epoch on the real Fashion-MNIST
(``max_epochs=10`` becomes ``max_epochs=1``) and then records the loss on the first validation
batch. The report is JSON: per chapter, per cell, ``status`` (ok, error, skipped), ``output``
and ``error``; and which module ``torch`` was.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import math
import os
import re
import sys
import traceback
import types
from pathlib import Path

CHAPTERS = Path(__file__).parent / "chapters"
MARK = re.compile(r"^# %% cell \d+\n", re.M)


class Tab:
    """d2lbook's ``tab`` as a PyTorch build of the book sees it."""

    @staticmethod
    def selected(*names: str) -> bool:
        return "pytorch" in names or "all" in names

    @staticmethod
    def interact_select(*names: object) -> None:
        return None


def cells_of(chapter: str) -> list[str]:
    return MARK.split((CHAPTERS / f"{chapter}.py").read_text(encoding="utf-8"))[1:]


def _prepare(backend: str) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    if backend == "wally":
        import wally

        wally.alias_torch()
        return
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or built for another torch: the shape cells never need it
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        for name in ("datasets", "transforms", "utils", "models"):
            sub = types.ModuleType(f"torchvision.{name}")
            setattr(stub, name, sub)
            sys.modules[f"torchvision.{name}"] = sub
        sys.modules["torchvision"] = stub


def _final_loss(namespace: dict) -> float:
    model, data = namespace["model"], namespace["data"]
    batch = next(iter(data.val_dataloader()))
    with namespace["torch"].no_grad():
        return float(model.loss(model(*batch[:-1]), batch[-1]))


def _execute(source: str, namespace: dict) -> None:
    """Run a cell as a notebook does: the value of a last bare expression is shown (its
    ``repr``), unless the line ends in ``;``."""
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body else None
    shown = isinstance(last, ast.Expr) and not source.rstrip().endswith(";")
    if shown:
        tree.body.pop()
    exec(compile(tree, "<d2l cell>", "exec"), namespace)  # noqa: S102 - the book's own code
    if shown:
        value = eval(compile(ast.Expression(last.value), "<d2l cell>", "eval"), namespace)
        if value is not None:
            print(repr(value))


def run_cell(source: str, namespace: dict) -> dict:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            _execute(source, namespace)
    except Exception as error:  # the report records every failure; one cell's error is data
        last = traceback.extract_tb(error.__traceback__)[-1]
        return {"status": "error", "output": out.getvalue(),
                "error": f"{type(error).__name__}: {error} ({Path(last.filename).name}:"
                         f"{last.lineno})"}
    return {"status": "ok", "output": out.getvalue()}


# Cells that read what a skipped training cell made.
NEEDS_TRAINING = {("batch-norm", 5): "reads the model that cell 4 trains"}


def run_chapter(chapter: str, train: bool, seed: int) -> list[dict]:
    import torch

    torch.manual_seed(seed)
    namespace: dict = {"__name__": "__main__", "tab": Tab()}
    results = []
    for index, source in enumerate(cells_of(chapter)):
        if (chapter, index) in NEEDS_TRAINING and not train:
            results.append({"status": "skipped", "output": "",
                            "error": NEEDS_TRAINING[chapter, index]})
            continue
        if "trainer.fit(" in source:
            if not (train and chapter == "lenet"):
                results.append({"status": "skipped", "output": "",
                                "error": "trains 10 epochs; only LeNet trains here (--train)"})
                continue
            source = source.replace("max_epochs=10", "max_epochs=1")
            result = run_cell(source, namespace)
            if result["status"] == "ok":
                result["final_loss"] = _final_loss(namespace)
                trainer = namespace["trainer"]
                result["batches"] = [trainer.train_batch_idx, trainer.num_train_batches]
            results.append(result)
            continue
        results.append(run_cell(source, namespace))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["wally", "torch"], required=True)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("chapters", nargs="+")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    _prepare(args.backend)
    report: dict = {"chapters": {}}
    for chapter in args.chapters:
        report["chapters"][chapter] = run_chapter(chapter, args.train, args.seed)
    torch = sys.modules.get("torch")
    report["torch_module"] = getattr(torch, "__name__", None)
    report["real_torch_loaded"] = any(name == "torch._C" or name.startswith("torch._C.")
                                      for name in sys.modules)
    for results in report["chapters"].values():
        for cell in results:
            if "final_loss" in cell and not math.isfinite(cell["final_loss"]):
                cell["final_loss"] = str(cell["final_loss"])
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
