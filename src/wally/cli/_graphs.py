"""``wally train MODEL --dataset GRAPH``: semi-supervised node classification on a graph
(wally.data.graphs), full batch, as Kipf & Welling train their GCN."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wally.cli import CommandError

GRAPH_MODELS = ["gcn"]


def train_graph(args: argparse.Namespace) -> int:
    """Train ``args.model`` on ``args.dataset``; write metrics.json, checkpoint.safetensors and
    graph.png (when matplotlib is there) to ``--out``; print the test accuracy."""
    if args.model not in GRAPH_MODELS:
        args.parser.error(f"argument MODEL: {args.model!r} is not a graph model; with --dataset "
                          f"{args.dataset} choose from " + ", ".join(GRAPH_MODELS))
    if args.resume:
        raise CommandError("--resume: a graph run is full-batch and takes seconds; start it "
                           "again instead")
    import wally
    from wally.data.graphs import KARATE_CLASSES, KARATE_LABELLED, karate_club
    from wally.geometric.train import train_node_classifier
    from wally.io.atomic import atomic_write
    from wally.io.checkpoint import save_checkpoint
    from wally.models import get_model

    epochs = 200 if args.epochs is None else args.epochs
    lr = 0.01 if args.lr is None else args.lr
    decay = 5e-4 if args.weight_decay is None else args.weight_decay
    wally.manual_seed(args.seed)
    data = karate_club()
    model = get_model(args.model, in_channels=data.num_node_features,
                      num_classes=len(KARATE_CLASSES))
    result = train_node_classifier(model, data, epochs=epochs, lr=lr, weight_decay=decay)
    out = Path(args.out if args.out is not None else f"runs/{args.model}-{args.dataset}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    right = int(round(result.test_accuracy * int(data.test_mask.array.sum())))
    metrics = {"model": args.model, "dataset": args.dataset, "epochs": epochs, "lr": lr,
               "weight_decay": decay, "seed": args.seed, "optimizer": "adam",
               "labelled": list(KARATE_LABELLED), "test_accuracy": result.test_accuracy,
               "test_right": right, "final_loss": result.losses[-1] if result.losses else None,
               "predictions": [int(p) for p in result.predictions]}
    atomic_write(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    save_checkpoint(out / "checkpoint.safetensors", model, extra={"dataset": args.dataset})
    print(f"{args.model} on {args.dataset}: {right}/{int(data.test_mask.array.sum())} unlabelled "
          f"members right (test accuracy {result.test_accuracy:.4f}), {epochs} epochs of Adam "
          f"lr {lr:g}, labelled: members {', '.join(map(str, KARATE_LABELLED))}")
    try:
        from wally.viz.graph import plot_graph

        picture = plot_graph(data.edge_index, result.predictions, out / "graph.png",
                             labels=data.y, labelled=KARATE_LABELLED,
                             class_names=KARATE_CLASSES)
        print(f"picture: {picture.path}")
    except ImportError as error:
        print(f"no picture ({error})")
    print(f"files in {out}: metrics.json, checkpoint.safetensors")
    return 0
