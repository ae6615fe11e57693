"""The note's *Where's Wally*, in miniature: does this picture contain Wally, wherever he is?

Each generated 1×32×32 image is a crowd of random strokes. Half of them also hold "Wally", a
5×5 patch of horizontal stripes (his red-and-white jumper); the others hold a decoy with
*vertical* stripes, so position tells nothing and only the local pattern does. A small CNN
(two convolutions, pooling, a global max) learns to answer — translation invariance and
locality at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

import wally
from wally import nn
from wally.nn import functional as F  # noqa: N812 - PyTorch's convention

IMAGE_SIZE = 32
WALLY = np.array([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0],
                  [1, 1, 1, 1, 1]], dtype=np.float32)
DECOY = WALLY.T.copy()


def make_crowds(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images (N, 1, 32, 32) and labels (1 where Wally is in the picture)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    labels = rng.integers(0, 2, size=count).astype(np.int64)
    for n in range(count):
        canvas = images[n, 0]
        for _ in range(12):  # the crowd: short strokes in both directions
            r, c = rng.integers(0, IMAGE_SIZE - 3, size=2)
            if rng.random() < 0.5:
                canvas[r, c:c + 3] = 1
            else:
                canvas[r:r + 3, c] = 1
        r, c = rng.integers(0, IMAGE_SIZE - 5, size=2)
        canvas[r:r + 5, c:c + 5] = WALLY if labels[n] else DECOY
    images += rng.normal(0, 0.1, images.shape).astype(np.float32)
    return images, labels


def wally_finder() -> nn.Sequential:
    """conv 3×3 → ReLU → max-pool → conv 3×3 → ReLU → global max → linear: 'is he here?'"""
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    with wally.no_grad():
        predicted = model(wally.from_numpy(images)).argmax(dim=1).numpy()
    model.train()
    return float((predicted == labels).mean())


def train(epochs: int = 6, batch_size: int = 64, lr: float = 0.05, seed: int = 0,
          train_count: int = 3000, log: Callable[[str], None] = print) -> dict[str, float]:
    """Train the finder on generated crowds with SGD + momentum; return the final metrics."""
    wally.manual_seed(seed)
    train_x, train_y = make_crowds(train_count, seed)
    test_x, test_y = make_crowds(1000, seed + 1)
    model = wally_finder()
    params = list(model.parameters())
    velocity = [np.zeros_like(p.array) for p in params]
    order_rng = np.random.default_rng(seed)
    log(f"wally demo: is Wally in the picture? {train_count} training crowds, "
        f"{len(test_x)} test crowds, 32x32")
    log(repr(model))
    loss_value = float("nan")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = order_rng.permutation(train_count)
        total = 0.0
        for first in range(0, train_count, batch_size):
            batch = order[first:first + batch_size]
            x, y = wally.from_numpy(train_x[batch]), wally.from_numpy(train_y[batch])
            loss = F.cross_entropy(model(x), y)
            model.zero_grad()
            loss.backward()
            with wally.no_grad():
                for p, v in zip(params, velocity):
                    v *= 0.9
                    v += p.grad.array
                    p -= lr * wally.from_numpy(v)
            total += loss.item() * len(batch)
        loss_value = total / train_count
        seconds = time.perf_counter() - start
        train_accuracy = accuracy(model, train_x, train_y)
        log(f"epoch {epoch}: loss {loss_value:.4f}  train acc {train_accuracy:.3f}"
            f"  test acc {accuracy(model, test_x, test_y):.3f}  "
            f"({train_count / seconds:,.0f} images/s)")
    return {"loss": loss_value, "test_accuracy": accuracy(model, test_x, test_y)}
