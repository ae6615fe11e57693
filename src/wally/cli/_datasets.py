"""The datasets the command line knows, by name: cheap to import (no NumPy), so that
``wally --help`` starts fast. Reading and shaping them is :mod:`wally.cli._images`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """What the command line knows about a dataset before reading it."""

    name: str
    channels: int
    size: int
    description: str


DATASETS = {
    "mnist": DatasetInfo("mnist", 1, 28, "MNIST handwritten digits (download)"),
    "fashion-mnist": DatasetInfo("fashion-mnist", 1, 28, "Zalando's Fashion-MNIST (download)"),
    "cifar10": DatasetInfo("cifar10", 3, 32, "CIFAR-10, binary version (download)"),
    "digits": DatasetInfo("digits", 1, 8, "scikit-learn's 8x8 digits (no download)"),
    "synthetic": DatasetInfo("synthetic", 1, 28, "generated 10-class 28x28 figures (offline)"),
}
DATASET_NAMES = list(DATASETS)

# Graphs for node classification (wally.data.graphs): trained by wally.cli._graphs.
GRAPH_DATASETS = {"karate": "Zachary's karate club, 34 members, 2 factions (networkx; gcn)",
                  "debian": "Debian packages x the libraries they need, 3221 x 447, shipped "
                            "(lightgcn)",
                  "movielens-100k": "943 users x 1682 films, 100k ratings (--download; lightgcn)",
                  "cora": "2708 papers, 7 classes, LINQS's text files (--download; gcn)"}
RECSYS_DATASETS = ["debian", "movielens-100k"]
# Text datasets (wally.cli._text reads them): a model of token ids trains on these.
TEXT_DATASETS = {
    "fortunes": "language of Debian's fortune cookies, 9 classes (apt packages fortunes*; "
                "offline; --data-dir: their folder, default /usr/share/games/fortunes)",
    "ag_news": "AG News topics, 4 classes (download)",
}
TEXT_DATASET_NAMES = list(TEXT_DATASETS)
