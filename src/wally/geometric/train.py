"""Semi-supervised node classification (Kipf & Welling 2017): full-batch training on one graph,
the loss only on the labelled nodes, accuracy on the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wally import functional as F
from wally import optim
from wally.autograd import no_grad
from wally.backend import xp
from wally.geometric.data import Data
from wally.nn.module import Module

__all__ = ["NodeClassification", "train_node_classifier"]


@dataclass
class NodeClassification:
    """What a run gives: the predicted class of every node, the test accuracy, the losses."""

    predictions: Any
    test_accuracy: float
    losses: list[float] = field(default_factory=list)


def train_node_classifier(model: Module, data: Data, epochs: int = 200, lr: float = 0.01,
                          weight_decay: float = 5e-4) -> NodeClassification:
    """Adam on the cross-entropy of the ``train_mask`` nodes, the whole graph each step, as
    Kipf & Welling train (lr 0.01, weight decay 5·10⁻⁴, 200 epochs are theirs)."""
    optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    train = data.train_mask.array
    losses = []
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits[train], data.y[train])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    model.eval()
    with no_grad():
        predictions = model(data.x, data.edge_index).array.argmax(axis=1)
    test = data.test_mask.array
    accuracy = float(xp.mean(predictions[test] == data.y.array[test]))
    return NodeClassification(predictions, accuracy, losses)
