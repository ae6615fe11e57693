"""Peak resident memory of one training run in a fresh process (one framework per process).

    python -m benchmarks._memory lenet wally --size full --threads 2

prints one JSON line: ``peak`` (the process's peak resident size, ``VmHWM``) and
``baseline`` (the resident size after imports, model and data, just before training) in bytes.

``VmHWM`` rather than ``getrusage``'s ``ru_maxrss``: Linux keeps ``ru_maxrss`` across
``fork`` and ``exec``, so a child started by a large benchmark process would report the
parent's peak.
"""

from __future__ import annotations

import argparse
import json


def _status(field: str) -> int:
    """A ``/proc/self/status`` size in bytes (``VmRSS``: resident now, ``VmHWM``: peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", choices=["lenet", "resnet18"])
    parser.add_argument("framework", choices=["wally", "torch"])
    parser.add_argument("--size", default="full", choices=["full", "quick", "tiny"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from benchmarks import cases, models
    from benchmarks._harness import set_threads

    # The wally process never imports PyTorch; the PyTorch one builds wally's initial weights
    # (NumPy and wally's modules, a few MiB) and copies them.
    set_threads(args.threads, torch=args.framework == "torch")
    if args.framework == "wally":
        import wally

        wally.manual_seed(0)
        model = models.wally_lenet() if args.run == "lenet" else models.wally_resnet18()
    else:
        wally_model, model = models.pair(args.run)
        del wally_model
    if args.run == "lenet":
        batches = {"full": 235, "quick": 12, "tiny": 1}[args.size]
        images, labels = cases.lenet_data(batches)
        run = cases.lenet_epoch(args.framework, model, images[:60000], labels[:60000])
    else:
        run = cases.resnet_step(args.framework, model, 64 if args.size != "tiny" else 2)
    import gc

    gc.collect()
    baseline = _status("VmRSS")
    run()
    if args.run == "resnet18":
        run()  # the second step, with every buffer of the first already allocated
    peak = _status("VmHWM")
    print(json.dumps({"peak": peak, "baseline": baseline}))


if __name__ == "__main__":
    main()
