"""wally against PyTorch, side by side on this CPU; writes ``benchmarks/RESULTS.md``.

    python -m benchmarks.run            # the full suite (several minutes)
    python -m benchmarks.run --quick    # the same cases, fewer repeats: a smoke run
    python -m benchmarks.run --only conv --only pool --threads 1
    python -m benchmarks.run --only train --accel both   # wally with and without numba
    python -m benchmarks.run --onednn both               # ... with and without oneDNN

Every case runs wally and PyTorch alternately in this process (after a warm-up), so both see
the same machine load; each repeat gives one ratio ``wally time / PyTorch time``, reported as
min / median / max.  GFLOP/s are given as a fraction of NumPy's float32 GEMM rate measured at
the start of the same run.  Peak memory is measured in a fresh process per framework, start-up
as ``python -c "import wally"`` against ``python -c "import torch"``.

Both frameworks get the same number of threads (``--threads``, default: the CPUs this process
may use): ``torch.set_num_threads`` for PyTorch, ``wally.set_num_threads`` (its chunk pool) and
threadpoolctl's BLAS limit for NumPy.  On processors where the environment sets
``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``), run the suite with both unset for that
command, ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.run``, and check
the BLAS kernel that RESULTS.md reports; leave them alone in tests and CI.

``--accel both`` times every case twice in the same run, wally with its compiled kernels
(``wally.backends.accel``, where numba is installed) and without them (a row named
``… (accel off)``); ``--accel off`` runs wally on NumPy alone.  ``--onednn both`` and
``--onednn off`` do the same with oneDNN's convolutions (``wally.backends.onednn``, where the
``onednn`` extra is installed; rows ``… (oneDNN off)``).  The targets and the geometric mean
read the rows with both as installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (repeats, warm-up calls, minimum seconds per repeat) per group and size
SETTINGS: dict[str, dict[str, tuple[int, int, float]]] = {
    "full": {
        "conv-fwd": (9, 2, 0.2), "conv": (9, 2, 0.3), "pool": (9, 2, 0.2),
        "train": (3, 1, 0.0), "infer": (11, 20, 0.2),
    },
    "quick": {
        "conv-fwd": (3, 1, 0.05), "conv": (3, 1, 0.05), "pool": (3, 1, 0.05),
        "train": (2, 1, 0.0), "infer": (3, 5, 0.05),
    },
    "tiny": {
        "conv-fwd": (2, 1, 0.0), "conv": (2, 1, 0.0), "pool": (2, 1, 0.0),
        "train": (2, 1, 0.0), "infer": (2, 1, 0.0),
    },
}
GROUP_TITLES = {
    "conv-fwd": "Convolution, forward",
    "conv": "Convolution, forward + backward",
    "pool": "Pooling, forward + backward",
    "train": "Training",
    "infer": "Inference latency",
}


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    vector = next((isa for isa in ("avx512f", "avx2", "avx") if isa in flags),
                                  None)
                    if vector:
                        model += f" ({vector.removesuffix('f').upper().replace('512', '-512')})"
                    break
    except OSError:
        pass
    import numpy
    import torch

    import wally

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "wally": getattr(wally, "__version__", "source tree"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
    }


def _selector(patterns: list[str]) -> Callable[[str], bool]:
    lowered = [p.lower() for p in patterns]

    def only(key: str) -> bool:
        return not lowered or any(p in key.lower() for p in lowered)

    return only


def _memory(size: str, threads: int, runs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": run}
        for framework in ("wally", "torch"):
            completed = subprocess.run(
                [sys.executable, "-m", "benchmarks._memory", run, framework, "--size", size,
                 "--threads", str(threads)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            row[framework] = json.loads(completed.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"memory {run:9s} wally peak {row['wally']['peak'] / 2**20:7.1f} MiB  "
              f"torch peak {row['torch']['peak'] / 2**20:7.1f} MiB", flush=True)
    return rows


def _startup(repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"wally": [], "torch": [], "python": []}
    commands = {"wally": "import wally", "torch": "import torch", "python": "pass"}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    # As installed by pip: with compiled bytecode (this environment may forbid writing it),
    # kept outside the source tree; the first, untimed round writes it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="wally-bench-pycache-")
    for repeat in range(repeats + 1):
        order = ["wally", "torch", "python"] if repeat % 2 else ["torch", "wally", "python"]
        for name in order:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", commands[name]], check=True, env=env)
            if repeat:  # the first round warms the file cache
                times[name].append(time.perf_counter() - start)
    return times


def _fmt_ratio(ratios: list[float]) -> str:
    return f"{min(ratios):.2f} / **{statistics.median(ratios):.2f}** / {max(ratios):.2f}"


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _thread_counts(text: str | None) -> list[int]:
    cores = len(os.sched_getaffinity(0))
    if not text:
        return sorted({1, cores})
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(n < 1 for n in counts):
        raise SystemExit(f"--threads: expected positive integers such as 1,2, got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a shorter epoch")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default=None,
                        help="thread counts to run every case with, e.g. 1,2 (default: 1 and "
                             "the usable CPUs); both frameworks get the same count")
    parser.add_argument("--only", action="append", default=[],
                        help="run the cases whose 'group/name' contains this (repeatable): "
                             "conv, conv-fwd, pool, train, infer, memory, startup")
    parser.add_argument("--accel", choices=("on", "off", "both"), default="on",
                        help="wally's compiled kernels (numba): as installed (on), NumPy alone "
                             "(off), or every case both ways in one run (both)")
    parser.add_argument("--onednn", choices=("on", "off", "both"), default="on",
                        help="oneDNN's convolutions (the onednn extra): as installed (on), "
                             "switched off (off), or every case both ways in one run (both)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    counts = _thread_counts(args.threads)
    only = _selector(args.only)

    from benchmarks import cases
    from benchmarks._harness import gemm_peak, paired, set_threads

    if args.onednn == "off":  # in this process and in the memory runs' fresh processes
        os.environ["WALLY_ONEDNN"] = "0"
        from wally.backends import onednn

        onednn.set_enabled(False)
    machine = _machine()
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    builders = (cases.conv_cases, cases.pool_cases, cases.training_cases, cases.inference_cases)
    for threads in counts:
        thread_info = set_threads(threads)
        peak = gemm_peak()
        print(f"{machine['cpu']}, {machine['cores']} cores; {thread_info}; NumPy float32 GEMM "
              f"peak {peak:.0f} GFLOP/s; load {os.getloadavg()[0]:.1f}", flush=True)
        rows: list[dict[str, Any]] = []
        for build in builders:
            for case in _variants(build(size, only), args.accel, args.onednn):
                repeats, warmup, min_time = SETTINGS[size][case.group]
                timing = paired(case.wally, case.torch, repeats, warmup, min_time)
                rows.append({"case": case, "timing": timing})
                lo, med, hi = timing.ratio_stats()
                print(f"{case.group:8s} {case.name:38s} wally "
                      f"{_fmt_time(timing.median('wally')):>9s}  torch "
                      f"{_fmt_time(timing.median('torch')):>9s}  ratio {lo:.2f} / {med:.2f} / "
                      f"{hi:.2f}", flush=True)
        runs.append({"threads": threads, "info": thread_info, "peak": peak, "rows": rows})

    memory = []
    memory_runs = [r for r in ("lenet", "resnet18") if only(f"memory/{r}")]
    if memory_runs and (not args.only or any("memory" in p for p in args.only)):
        memory = _memory(size, max(counts), memory_runs)
    startup = None
    if not args.only or any("startup" in p for p in args.only):
        startup = _startup({"full": 10, "quick": 3, "tiny": 1}[size])
        print(f"startup  import wally {statistics.median(startup['wally']):.3f} s, import torch "
              f"{statistics.median(startup['torch']):.3f} s", flush=True)
    load_after = os.getloadavg()

    machine["accel"] = _accel_state(args.accel)
    machine["onednn"] = _onednn_state(args.onednn)
    text = _report(size, machine, load_before, load_after, runs, memory, startup, max(counts))
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


ACCEL_OFF = " (accel off)"
ONEDNN_OFF = " (oneDNN off)"


def _is_variant(name: str) -> bool:
    """Whether a row is one of the ``… (accel off)`` or ``… (oneDNN off)`` variants."""
    return name.endswith((ACCEL_OFF, ONEDNN_OFF))


def _variants(cases: list[Any], accel_mode: str, onednn_mode: str) -> list[Any]:
    """``cases`` with wally as installed, and for each of the two switches set to ``both`` each
    case once more with that switch off (named ``… (accel off)``, ``… (oneDNN off)``); a switch
    set to ``off`` turns it off in every row instead."""
    from wally.backends import accel, onednn

    def without(fn: Callable[[], Any], flags: Callable[[bool], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with flags(False):
                return fn()
        return run

    found = []
    for case in cases:
        if accel_mode == "off":
            case = dataclasses.replace(case, wally=without(case.wally, accel.flags))
        found.append(case)
        if accel_mode == "both":
            found.append(dataclasses.replace(case, name=case.name + ACCEL_OFF,
                                             wally=without(case.wally, accel.flags)))
        if onednn_mode == "both" and case.group != "pool":  # pooling never runs oneDNN
            found.append(dataclasses.replace(case, name=case.name + ONEDNN_OFF,
                                             wally=without(case.wally, onednn.flags)))
    return found


def _onednn_state(mode: str) -> str:
    from wally.backends import onednn

    if not onednn.is_available():
        return f"not available ({onednn.unavailable_reason()})"
    version = "oneDNN {}.{}.{}".format(*(onednn.version() or (0, 0, 0)))
    state = {"on": f"{version}, on", "off": f"{version}, switched off",
             "both": f"{version}: each case with it and without it (oneDNN off)"}[mode]
    return f"{state}; OpenMP: {_openmp_runtime()}"


def _openmp_runtime() -> str:
    """Which libgomp.so.1 this process loaded: PyTorch's, where torch was imported first (then
    wally's oneDNN shares it, at libgomp's default spin count, not wally's), or the system's."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return "unknown"
    shared = any("torch" in p for p in paths)
    names = ", ".join(sorted("/".join(p.split("/")[-3:]) for p in paths))
    return (f"{names} (PyTorch's, shared with wally's oneDNN: libgomp's default spin count)"
            if shared else names or "not loaded")


def _accel_state(mode: str) -> str:
    from wally.backends import accel

    if not accel.is_available():
        return "not installed (NumPy alone)"
    try:
        import numba

        version = f"numba {numba.__version__}"
    except ImportError:  # pragma: no cover - is_available said it was there
        version = "numba"
    return {"on": f"{version}, on", "off": f"{version}, switched off",
            "both": f"{version}: each case with it and without it (accel off)"}[mode]


def _report(size: str, machine: dict[str, Any], load_before: tuple[float, ...],
            load_after: tuple[float, ...], runs: list[dict[str, Any]],
            memory: list[dict[str, Any]], startup: dict[str, list[float]] | None,
            memory_threads: int) -> str:
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    command = "python -m benchmarks.run" + ("" if size == "full" else f" --{size}")
    lines = [
        "# wally against PyTorch: benchmark results",
        "",
        f"Written by `{command}` on {now}. Ratios are wally's time divided by PyTorch's (below"
        " 1: wally is faster), one per repeat, each repeat timing the two frameworks back to"
        " back in one process, in alternating order: min / **median** / max.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {machine['cpu']}, {machine['cores']} cores |",
        f"| load average (1 min) before / after | {load_before[0]:.1f} / {load_after[0]:.1f} |",
        f"| Python / NumPy / PyTorch / wally | {machine['python']} / {machine['numpy']} / "
        f"{machine['torch']} / {machine['wally']} |",
    ]
    for run in runs:
        lines.append(f"| NumPy BLAS ({run['threads']} thread run) | {run['info'].get('blas')} |")
    lines += [
        f"| OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE | {machine['OPENBLAS_CORETYPE']} / "
        f"{machine['OPENBLAS_L2_SIZE']} |",
        f"| wally's compiled kernels (`--accel`) | {machine.get('accel', 'on')} |",
        f"| oneDNN's convolutions (`--onednn`) | {machine.get('onednn', 'on')} |",
        "",
    ]
    for run in runs:
        lines += _timings(run)
    if memory:
        lines += [
            "## Peak resident memory", "",
            f"Each run in a fresh process per framework (`benchmarks/_memory.py`, "
            f"{memory_threads} threads): the process's peak RSS, and the resident size just "
            "before training (imports, model, data).", "",
            "| run | wally peak | PyTorch peak | ratio | wally before training | "
            "PyTorch before training |",
            "|---|---|---|---|---|---|",
        ]
        for row in memory:
            w, t = row["wally"], row["torch"]
            lines.append(
                f"| {'LeNet epoch' if row['run'] == 'lenet' else 'ResNet-18 step (two steps)'} | "
                f"{w['peak'] / 2**20:.0f} MiB | {t['peak'] / 2**20:.0f} MiB | "
                f"{w['peak'] / t['peak']:.2f} | {w['baseline'] / 2**20:.0f} MiB | "
                f"{t['baseline'] / 2**20:.0f} MiB |"
            )
        lines.append("")
    if startup:
        lines += [
            "## Start-up", "",
            "Fresh interpreters, alternating, with bytecode compiled (as pip installs it; the "
            "first round, which writes it, is not timed).", "",
            "| command | median | min | max |", "|---|---|---|---|",
        ]
        for name, command_text in (("wally", "import wally"), ("torch", "import torch"),
                                   ("python", "pass")):
            values = startup[name]
            lines.append(f"| `python -c \"{command_text}\"` | {statistics.median(values):.3f} s"
                         f" | {min(values):.3f} s | {max(values):.3f} s |")
        lines.append("")
    for run in runs:
        lines += _targets(run, memory if run is runs[-1] else [],
                          startup if run is runs[-1] else None)
        lines.append("")
    lines += _engine_targets(runs, memory, startup)
    return "\n".join(lines)


def _median_ratios(run: dict[str, Any], group: str, name: str | None = None) -> list[float]:
    """The median wally/PyTorch ratio of every case of ``group`` (or the one named ``name``)
    in ``run``, wally as installed (not the ``… (accel off)``, ``… (oneDNN off)`` variants)."""
    return [statistics.median(r["timing"].ratios) for r in run["rows"]
            if r["case"].group == group and (name is None or r["case"].name == name)
            and not _is_variant(r["case"].name)]


def _engine_targets(runs: list[dict[str, Any]], memory: list[dict[str, Any]],
                    startup: dict[str, list[float]] | None) -> list[str]:
    """Issue 12's targets (the engine's speed), each at every thread count of the run, and
    the LeNet epoch's gain from the first thread count to the last, wally's beside PyTorch's."""
    checks: list[tuple[str, str, str, bool]] = []
    for run in runs:
        at = f"{run['threads']} thread{'s' if run['threads'] > 1 else ''}"
        for name, goal in (("LeNet epoch", 1.0), ("ResNet-18 step", 1.2)):
            found = _median_ratios(run, "train", name)
            if found:
                checks.append((f"{name}, {at}", f"≤ {goal}", f"{found[0]:.2f}",
                               found[0] <= goal))
        conv = _median_ratios(run, "conv")
        if conv:
            mean = _geomean(conv)
            checks.append((f"convolution fwd+bwd, geometric mean, {at}", "≤ 1.0", f"{mean:.2f}",
                           mean <= 1.0))
            checks.append((f"convolution fwd+bwd, worst case, {at}", "≤ 1.5", f"{max(conv):.2f}",
                           max(conv) <= 1.5))
    epochs = [(run["threads"], row["timing"]) for run in runs for row in run["rows"]
              if row["case"].group == "train" and row["case"].name == "LeNet epoch"]
    if len(epochs) >= 2 and epochs[0][0] < epochs[-1][0]:
        (first, one), (last, many) = epochs[0], epochs[-1]
        gain = one.median("wally") / many.median("wally")
        torch_gain = one.median("torch") / many.median("torch")
        checks.append((f"LeNet epoch from {first} to {last} threads, speed-up", "≥ 1.6×",
                       f"{gain:.2f}× (PyTorch {torch_gain:.2f}×)", gain >= 1.6))
    checks += _resource_checks(memory, startup)
    return _target_table("Targets (issue 12, the engine)", checks) + [""] if checks else []


def _resource_checks(memory: list[dict[str, Any]],
                     startup: dict[str, list[float]] | None) -> list[tuple[str, str, str, bool]]:
    """The targets both issues share: peak memory at most PyTorch's, ``import wally`` under
    0.2 s."""
    checks = []
    for row in memory:
        ratio = row["wally"]["peak"] / row["torch"]["peak"]
        checks.append((f"peak memory, {row['run']}", "≤ 1.0 × PyTorch", f"{ratio:.2f}",
                       ratio <= 1.0))
    if startup:
        value = statistics.median(startup["wally"])
        checks.append(("`import wally`", "< 0.2 s", f"{value:.3f} s", value < 0.2))
    return checks


def _target_table(title: str, checks: list[tuple[str, str, str, bool]]) -> list[str]:
    """``checks`` (name, goal, measured, met) as a markdown table under ``## title``."""
    lines = [f"## {title}", "", "| target | goal | measured (median) | met |",
             "|---|---|---|---|"]
    return lines + [f"| {name} | {goal} | {value} | {'yes' if ok else '**no**'} |"
                    for name, goal, value, ok in checks]


def _timings(run: dict[str, Any]) -> list[str]:
    threads, peak, rows = run["threads"], run["peak"], run["rows"]
    lines = [
        f"## {threads} thread{'s' if threads > 1 else ''} (PyTorch {run['info']['torch_threads']},"
        f" wally and its BLAS {threads})", "",
        f"NumPy float32 GEMM peak at {threads} thread{'s' if threads > 1 else ''} (1024², best"
        f" of 10, measured at the start of this run): **{peak:.0f} GFLOP/s**.", "",
    ]
    for group, title in GROUP_TITLES.items():
        group_rows = [r for r in rows if r["case"].group == group]
        if not group_rows:
            continue
        lines += [f"### {title}", ""]
        flops = any(r["case"].flops for r in group_rows)
        header = "| case | wally | PyTorch | ratio min / **median** / max |"
        rule = "|---|---|---|---|"
        if flops:
            header += " wally GFLOP/s (of peak) | PyTorch GFLOP/s (of peak) |"
            rule += "---|---|"
        lines += [header + " note |", rule + "---|"]
        for row in group_rows:
            case, timing = row["case"], row["timing"]
            w, t = timing.median("wally"), timing.median("torch")
            line = (f"| {case.name} | {_fmt_time(w)} | {_fmt_time(t)} | "
                    f"{_fmt_ratio(timing.ratios)} |")
            if flops:
                if case.flops:
                    wg, tg = case.flops / w / 1e9, case.flops / t / 1e9
                    line += f" {wg:.0f} ({wg / peak:.0%}) | {tg:.0f} ({tg / peak:.0%}) |"
                else:
                    line += " | |"
            lines.append(line + f" {case.note} |")
        if group == "conv":
            medians = _median_ratios(run, "conv")
            lines += ["", f"Geometric mean of the median ratios: **{_geomean(medians):.2f}**."]
            off = [statistics.median(r["timing"].ratios) for r in group_rows
                   if r["case"].name.endswith(ACCEL_OFF)]
            if off:
                lines += ["", f"Without the compiled kernels: **{_geomean(off):.2f}**."]
            off = [statistics.median(r["timing"].ratios) for r in group_rows
                   if r["case"].name.endswith(ONEDNN_OFF)]
            if off:
                lines += ["", f"Without oneDNN: **{_geomean(off):.2f}**."]
        lines.append("")
    return lines


def _targets(run: dict[str, Any], memory: list[dict[str, Any]],
             startup: dict[str, list[float]] | None) -> list[str]:
    checks: list[tuple[str, str, str, bool]] = []
    lenet = _median_ratios(run, "train", "LeNet epoch")
    if lenet:
        checks.append(("LeNet epoch", "≤ 1.5", f"{lenet[0]:.2f}", lenet[0] <= 1.5))
    conv = _median_ratios(run, "conv")
    if conv:
        mean = _geomean(conv)
        checks.append(("convolution fwd+bwd, geometric mean", "≤ 2.0", f"{mean:.2f}", mean <= 2))
        checks.append(("convolution fwd+bwd, worst case", "≤ 4", f"{max(conv):.2f}",
                       max(conv) <= 4))
    pool = _median_ratios(run, "pool")
    if pool:
        checks.append(("pooling, worst case", "≤ 1.5", f"{max(pool):.2f}", max(pool) <= 1.5))
    infer = _median_ratios(run, "infer")
    if infer:
        checks.append(("inference at batch 1, worst case", "≤ 1.0", f"{max(infer):.2f}",
                       max(infer) <= 1.0))
    checks += _resource_checks(memory, startup)
    threads = run["threads"]
    return _target_table(f"Targets (issue 5), {threads} thread{'s' if threads > 1 else ''}",
                         checks)


if __name__ == "__main__":
    sys.exit(main())
