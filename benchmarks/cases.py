"""The benchmark cases: each gives a wally callable and a PyTorch callable doing the same work.

``size`` picks the problem size: ``"full"`` is the issue's, ``"quick"`` the same shapes with
fewer repeats and a shorter LeNet epoch, ``"tiny"`` a shrunken batch for the smoke test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Case:
    group: str
    name: str
    wally: Callable[[], Any]
    torch: Callable[[], Any]
    flops: float | None = None  # floating-point operations per call
    note: str = ""


# name: (input shape, weight shape, keyword arguments, input gradient?)
CONVOLUTIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, Any], bool]] = {
    "LeNet conv1 (256,1,28,28)→6 k5 p2": ((256, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}, False),
    "LeNet conv2 (256,6,14,14)→16 k5": ((256, 6, 14, 14), (16, 6, 5, 5), {}, True),
    "ResNet (64,64,32,32)→64 k3 p1": ((64, 64, 32, 32), (64, 64, 3, 3), {"padding": 1}, True),
    "strided (64,64,32,32)→128 k3 s2 p1": (
        (64, 64, 32, 32), (128, 64, 3, 3), {"stride": 2, "padding": 1}, True,
    ),
    "1×1 (64,256,16,16)→64": ((64, 256, 16, 16), (64, 256, 1, 1), {}, True),
    "dilated (16,32,64,64)→32 k3 d2 p2": (
        (16, 32, 64, 64), (32, 32, 3, 3), {"dilation": 2, "padding": 2}, True,
    ),
    "depthwise (64,128,32,32) k3 p1 g128": (
        (64, 128, 32, 32), (128, 1, 3, 3), {"padding": 1, "groups": 128}, True,
    ),
    "conv1d (64,16,4096)→32 k9": ((64, 16, 4096), (32, 16, 9), {}, True),
}

# name: (input shape, PyTorch-style call on the functional module F)
POOLINGS: dict[str, tuple[tuple[int, ...], Callable[[Any, Any], Any]]] = {
    "max 2×2 s2 (64,64,56,56)": ((64, 64, 56, 56), lambda F, x: F.max_pool2d(x, 2, 2)),
    "max 3×3 s2 p1 (64,64,56,56)": ((64, 64, 56, 56), lambda F, x: F.max_pool2d(x, 3, 2, 1)),
    "avg 2×2 s2 (64,64,56,56)": ((64, 64, 56, 56), lambda F, x: F.avg_pool2d(x, 2, 2)),
    "adaptive avg → 1×1 (64,512,7,7)": (
        (64, 512, 7, 7), lambda F, x: F.adaptive_avg_pool2d(x, 1),
    ),
}


def _shrink(shape: tuple[int, ...], size: str) -> tuple[int, ...]:
    return (min(shape[0], 2),) + shape[1:] if size == "tiny" else shape


def _output_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_flops(x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, Any]) -> float:
    """Forward FLOPs: 2 · C_out · (C_in/groups) · ∏k per output position, per image."""
    nd = len(x_shape) - 2
    out = 1
    for n, k in zip(x_shape[2:], w_shape[2:], strict=True):
        out *= _output_size(
            n, k, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1)
        )
    taps = 1
    for k in w_shape[2:]:
        taps *= k
    del nd
    return 2.0 * w_shape[0] * w_shape[1] * taps * out * x_shape[0]


def conv_cases(size: str, only: Callable[[str], bool]) -> list[Case]:
    import torch
    import torch.nn.functional as TF

    import wally
    import wally.nn.functional as WF

    cases = []
    rng = np.random.default_rng(0)
    for name, (x_shape, w_shape, kw, input_grad) in CONVOLUTIONS.items():
        if not (only(f"conv/{name}") or only(f"conv-fwd/{name}")):
            continue
        x_shape = _shrink(x_shape, size)
        nd = len(x_shape) - 2
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        wally_conv = WF.conv2d if nd == 2 else WF.conv1d
        torch_conv = TF.conv2d if nd == 2 else TF.conv1d
        wx = wally.tensor(x, requires_grad=input_grad)
        ww, wb = wally.tensor(w, requires_grad=True), wally.tensor(b, requires_grad=True)
        tx = torch.tensor(x, requires_grad=input_grad)
        tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        with torch.no_grad():
            gy = np.ones(tuple(torch_conv(tx, tw, tb, **kw).shape), dtype=np.float32)
        wgy, tgy = wally.from_numpy(gy), torch.from_numpy(gy)
        flops = conv_flops(x_shape, w_shape, kw)

        def w_forward(wx: Any = wx, ww: Any = ww, wb: Any = wb, f: Any = wally_conv,
                      kw: dict[str, Any] = kw) -> None:
            with wally.no_grad():
                f(wx, ww, wb, **kw)

        def t_forward(tx: Any = tx, tw: Any = tw, tb: Any = tb, f: Any = torch_conv,
                      kw: dict[str, Any] = kw) -> None:
            with torch.no_grad():
                f(tx, tw, tb, **kw)

        def w_both(wx: Any = wx, ww: Any = ww, wb: Any = wb, f: Any = wally_conv,
                   kw: dict[str, Any] = kw, g: Any = wgy) -> None:
            f(wx, ww, wb, **kw).backward(g)
            wx.grad = ww.grad = wb.grad = None

        def t_both(tx: Any = tx, tw: Any = tw, tb: Any = tb, f: Any = torch_conv,
                   kw: dict[str, Any] = kw, g: Any = tgy) -> None:
            f(tx, tw, tb, **kw).backward(g)
            tx.grad = tw.grad = tb.grad = None

        note = "" if input_grad else "no input gradient"
        if only(f"conv-fwd/{name}"):
            cases.append(Case("conv-fwd", name, w_forward, t_forward, flops))
        if only(f"conv/{name}"):
            total = flops * (3 if input_grad else 2)
            cases.append(Case("conv", name, w_both, t_both, total, note))
    return cases


def pool_cases(size: str, only: Callable[[str], bool]) -> list[Case]:
    import torch
    import torch.nn.functional as TF

    import wally
    import wally.nn.functional as WF

    cases = []
    rng = np.random.default_rng(0)
    for name, (shape, call) in POOLINGS.items():
        if not only(f"pool/{name}"):
            continue
        x = rng.standard_normal(_shrink(shape, size), dtype=np.float32)
        wx, tx = wally.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        with torch.no_grad():
            gy = np.ones(tuple(call(TF, tx).shape), dtype=np.float32)
        wgy, tgy = wally.from_numpy(gy), torch.from_numpy(gy)

        def w_both(wx: Any = wx, call: Any = call, g: Any = wgy) -> None:
            call(WF, wx).backward(g)
            wx.grad = None

        def t_both(tx: Any = tx, call: Any = call, g: Any = tgy) -> None:
            call(TF, tx).backward(g)
            tx.grad = None

        cases.append(Case("pool", name, w_both, t_both))
    return cases


def lenet_data(batches: int, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-sized synthetic digits: ``batches · batch_size`` images in [0, 1] and labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batches * batch_size, 1, 28, 28), dtype=np.uint8)
    return images.astype(np.float32) / 255, rng.integers(0, 10, batches * batch_size)


def lenet_epoch(framework: str, model: Any, images: np.ndarray, labels: np.ndarray,
                batch_size: int = 256) -> Callable[[], float]:
    """One pass over ``images`` in batches, SGD (lr 0.1); returns the callable."""
    if framework == "wally":
        import wally

        optimizer = wally.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = wally.nn.CrossEntropyLoss()
        convert = wally.from_numpy
    else:
        import torch

        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = torch.nn.CrossEntropyLoss()
        convert = torch.from_numpy

    def epoch() -> float:
        loss = None
        for start in range(0, len(images), batch_size):
            x = convert(images[start : start + batch_size])
            y = convert(labels[start : start + batch_size])
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        return float(loss.item()) if loss is not None else 0.0

    return epoch


def resnet_step(framework: str, model: Any, batch: int) -> Callable[[], float]:
    """One SGD step (lr 0.01) of ResNet-18 on a fixed batch of 32×32 colour images."""
    rng = np.random.default_rng(1)
    images = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    return lenet_epoch(framework, model, images, labels, batch_size=batch)


def training_cases(size: str, only: Callable[[str], bool]) -> list[Case]:
    from benchmarks.models import pair

    cases = []
    if only("train/LeNet epoch"):
        batches = {"full": 235, "quick": 12, "tiny": 1}[size]
        images, labels = lenet_data(batches)
        wally_model, torch_model = pair("lenet")
        images = images[:60000]
        labels = labels[:60000]
        count = len(images)
        cases.append(Case(
            "train", "LeNet epoch",
            lenet_epoch("wally", wally_model, images, labels),
            lenet_epoch("torch", torch_model, images, labels),
            note=f"{count:,} images, batch 256, SGD; same initial weights",
        ))
    if only("train/ResNet-18 step"):
        batch = 64 if size != "tiny" else 2
        wally_model, torch_model = pair("resnet18")
        cases.append(Case(
            "train", "ResNet-18 step",
            resnet_step("wally", wally_model, batch), resnet_step("torch", torch_model, batch),
            note=f"CIFAR variant, batch {batch}, SGD",
        ))
    return cases


def inference_cases(size: str, only: Callable[[str], bool]) -> list[Case]:
    import torch

    import wally
    from benchmarks.models import pair

    cases = []
    for name, shape in (("LeNet", (1, 1, 28, 28)), ("ResNet-18", (1, 3, 32, 32))):
        if not only(f"infer/{name}"):
            continue
        wally_model, torch_model = pair("lenet" if name == "LeNet" else "resnet18")
        wally_model.eval()
        torch_model.eval()
        x = np.random.default_rng(2).standard_normal(shape, dtype=np.float32)
        wx, tx = wally.from_numpy(x), torch.from_numpy(x)

        def w_infer(model: Any = wally_model, x: Any = wx) -> None:
            with wally.no_grad():
                model(x)

        def t_infer(model: Any = torch_model, x: Any = tx) -> None:
            with torch.no_grad():
                model(x)

        cases.append(Case("infer", f"{name} batch 1", w_infer, t_infer, note="eval, no_grad"))
    return cases
