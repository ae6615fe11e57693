"""``wally train MODEL --dataset GRAPH``: semi-supervised node classification on a graph
(wally.data.graphs), full batch, as Kipf & Welling train their GCN; and recommendation on a
user–item graph (wally.data.recsys): LightGCN against BPR-MF and most-popular in one run.
``wally eval CHECKPOINT --dataset GRAPH`` scores a checkpoint written here again."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from wally.cli import CommandError

GRAPH_MODELS = ["gcn", "lightgcn"]
RECSYS_DEFAULTS: dict[str, Any] = {"epochs": 30, "lr": 0.01, "weight_decay": 1e-4,
                                   "batch_size": 2048, "test_fraction": 0.2, "k": 20,
                                   "num_layers": 2}
"""LightGCN's run: Adam lr 0.01, the L2 penalty λ = 10⁻⁴ on the batch's embeddings (the paper's,
taken from --weight-decay), batches of 2048 pairs (the paper's), 20% of each user's items held
out, Recall@20 / NDCG@20; 2 LGConv layers, chosen over 1-3 on a validation split carved out of
the training pairs of the Debian graph (benchmarks/recsys_targets.py), never on the test pairs."""


def train_graph(args: argparse.Namespace) -> int:
    """Train ``args.model`` on ``args.dataset``; write metrics.json, checkpoint.safetensors and
    graph.png (when matplotlib is there) to ``--out``; print the test accuracy."""
    if args.model not in GRAPH_MODELS:
        args.parser.error(f"argument MODEL: {args.model!r} is not a graph model; with --dataset "
                          f"{args.dataset} choose from " + ", ".join(GRAPH_MODELS))
    if args.resume:
        raise CommandError("--resume: a graph run is full-batch and takes seconds; start it "
                           "again instead")
    from wally.cli._datasets import RECSYS_DATASETS

    recsys = args.dataset in RECSYS_DATASETS
    if recsys != (args.model == "lightgcn"):
        wanted = "lightgcn" if recsys else "gcn"
        args.parser.error(f"argument MODEL: {args.dataset} is a "
                          f"{'user-item' if recsys else 'node classification'} graph: train "
                          f"{wanted} on it, not {args.model}")
    if recsys:
        return train_recommender(args)
    if args.dataset == "cora":
        return train_cora(args)
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


def load_cora(args: argparse.Namespace) -> Any:
    """Cora from ``--data-dir`` (``--download`` fetches LINQS's cora.tgz), errors as one line."""
    from wally.data import graphs
    from wally.data.errors import ChecksumError, DatasetNotFoundError

    try:
        return graphs.cora(args.data_dir, download_files=args.download, sizes=graphs.CORA_SIZES)
    except (DatasetNotFoundError, ChecksumError, ValueError, OSError) as error:
        raise CommandError(str(error).splitlines()[0]) from None


def train_cora(args: argparse.Namespace) -> int:
    """Kipf & Welling's GCN on Cora (140 labelled papers, 20 a class; see
    :func:`wally.data.graphs.parse_cora` for how the masks differ from Planetoid's): test
    accuracy printed, metrics.json and checkpoint.safetensors written."""
    import wally
    from wally.data.graphs import CORA_CLASSES
    from wally.geometric.train import train_node_classifier
    from wally.io.atomic import atomic_write
    from wally.io.checkpoint import save_checkpoint
    from wally.models import get_model

    epochs = 200 if args.epochs is None else args.epochs
    lr = 0.01 if args.lr is None else args.lr
    decay = 5e-4 if args.weight_decay is None else args.weight_decay
    data = load_cora(args)
    wally.manual_seed(args.seed)
    model = get_model("gcn", in_channels=data.num_node_features, num_classes=len(CORA_CLASSES))
    result = train_node_classifier(model, data, epochs=epochs, lr=lr, weight_decay=decay)
    out = Path(args.out if args.out is not None else f"runs/{args.model}-{args.dataset}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    tested = int(data.test_mask.array.sum())
    right = int(round(result.test_accuracy * tested))
    metrics = {"model": args.model, "dataset": args.dataset, "epochs": epochs, "lr": lr,
               "weight_decay": decay, "seed": args.seed, "optimizer": "adam",
               "labelled": int(data.train_mask.array.sum()),
               "test_accuracy": result.test_accuracy, "test_right": right,
               "final_loss": result.losses[-1] if result.losses else None}
    atomic_write(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    save_checkpoint(out / "checkpoint.safetensors", model, extra={"dataset": args.dataset})
    print(f"{args.model} on cora: {right}/{tested} test papers right (test accuracy "
          f"{result.test_accuracy:.4f}), {epochs} epochs of Adam lr {lr:g}, "
          f"{metrics['labelled']} labelled papers")
    print(f"files in {out}: metrics.json, checkpoint.safetensors")
    return 0


def load_interactions(args: argparse.Namespace) -> Any:
    """The user–item graph ``args.dataset`` names, errors as one line."""
    from wally.data.errors import ChecksumError, DatasetNotFoundError
    from wally.data.recsys import debian_depends, movielens_100k

    try:
        if args.dataset == "debian":
            return debian_depends()
        # wally summary has no --data-dir / --download: the default folder, no download
        return movielens_100k(getattr(args, "data_dir", None),
                              download_files=getattr(args, "download", False))
    except (DatasetNotFoundError, ChecksumError, ValueError, OSError) as error:
        raise CommandError(str(error).splitlines()[0]) from None


def rank_all(model: Any, data: Any, train: Any, test: Any, k: int) -> list[Any]:
    """The checkpoint's ranking and most-popular's on the same split."""
    from wally.geometric.recommend import evaluate_scores, model_scores, most_popular_scores

    return [evaluate_scores("most-popular", most_popular_scores(train, data.num_users,
                                                                 data.num_items), train, test, k),
            evaluate_scores("model", model_scores(model, train, data.num_users), train, test, k)]


def train_recommender(args: argparse.Namespace) -> int:
    """LightGCN, BPR-MF (LightGCN with no layers, same loss, sampler and optimiser) and
    most-popular on one held-out split of ``args.dataset``; prints all three Recall@K / NDCG@K,
    writes metrics.json and LightGCN's checkpoint.safetensors."""
    import wally
    from wally.geometric.recommend import (
        evaluate_scores,
        model_scores,
        most_popular_scores,
        train_bpr,
    )
    from wally.io.atomic import atomic_write
    from wally.io.checkpoint import save_checkpoint
    from wally.models import get_model

    d = RECSYS_DEFAULTS
    epochs = d["epochs"] if args.epochs is None else args.epochs
    lr = d["lr"] if args.lr is None else args.lr
    reg = d["weight_decay"] if args.weight_decay is None else args.weight_decay
    # train.py's --batch-size default (256) is for images; LightGCN's is the paper's 2048
    batch = d["batch_size"] if args.batch_size is None else args.batch_size
    k = d["k"]
    data = load_interactions(args)
    train, test = data.split(d["test_fraction"], seed=args.seed)
    nodes = data.num_users + data.num_items
    results = [evaluate_scores("most-popular", most_popular_scores(
        train, data.num_users, data.num_items), train, test, k)]
    models = {}
    for name, layers in (("bpr-mf", 0), ("lightgcn", d["num_layers"])):
        wally.manual_seed(args.seed)
        model = get_model("lightgcn", num_nodes=nodes, num_layers=layers)
        losses = train_bpr(model, train, data.num_users, data.num_items, epochs=epochs,
                           batch_size=batch, lr=lr, lambda_reg=reg, seed=args.seed)
        result = evaluate_scores(name, model_scores(model, train, data.num_users), train,
                                 test, k)
        result.losses = losses
        results.append(result)
        models[name] = model
    out = Path(args.out if args.out is not None else f"runs/{args.model}-{args.dataset}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    extra = {"dataset": args.dataset, "split_seed": args.seed,
             "test_fraction": d["test_fraction"], "num_users": data.num_users,
             "num_items": data.num_items}
    metrics = {"model": args.model, "dataset": args.dataset, "epochs": epochs, "lr": lr,
               "lambda_reg": reg, "batch_size": batch, "seed": args.seed, "optimizer": "adam",
               "num_layers": d["num_layers"],
               "users": data.num_users, "items": data.num_items,
               "train_pairs": int(train.shape[1]), "test_pairs": int(test.shape[1]),
               "k": k, "results": {r.name: {f"recall@{k}": r.recall, f"ndcg@{k}": r.ndcg,
                                            "final_loss": r.losses[-1] if r.losses else None}
                                   for r in results}}
    atomic_write(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    save_checkpoint(out / "checkpoint.safetensors", models["lightgcn"], extra=extra)
    print(f"{args.dataset}: {data.num_users} users x {data.num_items} items, "
          f"{train.shape[1]} training pairs, {test.shape[1]} held out "
          f"({d['test_fraction']:.0%} of each user's, seed {args.seed}); {epochs} epochs of "
          f"Adam lr {lr:g}, batch {batch}, lambda {reg:g}")
    print(f"{'':14}{'Recall@' + str(k):>10}{'NDCG@' + str(k):>10}")
    for r in results:
        print(f"{r.name:14}{r.recall:10.4f}{r.ndcg:10.4f}")
    best = max(results, key=lambda r: r.recall)
    print(f"best Recall@{k}: {best.name}")
    print(f"files in {out}: metrics.json, checkpoint.safetensors (lightgcn)")
    return 0


def evaluate_graph(args: argparse.Namespace, model: Any, checkpoint: Any) -> int:
    """``wally eval`` for a graph checkpoint: test accuracy (gcn on karate) or Recall@20 /
    NDCG@20 on the split the checkpoint was trained with (lightgcn)."""
    from wally.cli._datasets import RECSYS_DATASETS
    from wally.models import GCN, LightGCN

    extra = checkpoint.extra
    if args.split != "test":
        raise CommandError(f"--split {args.split}: a graph checkpoint is scored on its test "
                           f"split only")
    if args.dataset in RECSYS_DATASETS:
        if not isinstance(model, LightGCN):
            raise CommandError(f"{args.checkpoint} holds a {type(model).__name__}, not a "
                               f"LightGCN: it cannot rank {args.dataset}'s items")
        data = load_interactions(args)
        nodes = data.num_users + data.num_items
        if model.num_nodes != nodes:
            raise CommandError(f"{args.checkpoint} has {model.num_nodes} node embeddings, but "
                               f"{args.dataset} has {nodes} users and items")
        seed, fraction = extra.get("split_seed", 0), extra.get("test_fraction", 0.2)
        if isinstance(seed, bool) or not isinstance(seed, int) or not isinstance(
                fraction, float):
            raise CommandError(f"{args.checkpoint}: its split_seed/test_fraction are not numbers")
        train, test = data.split(fraction, seed=seed)
        k = RECSYS_DEFAULTS["k"]
        popular, ours = rank_all(model, data, train, test, k)
        result = {"checkpoint": args.checkpoint, "dataset": args.dataset, "split_seed": seed,
                  f"recall@{k}": ours.recall, f"ndcg@{k}": ours.ndcg,
                  f"most_popular_recall@{k}": popular.recall,
                  f"most_popular_ndcg@{k}": popular.ndcg}
        if args.json:
            print(json.dumps(result))
        else:
            print(f"Recall@{k} {ours.recall:.4f}  NDCG@{k} {ours.ndcg:.4f}  (most-popular: "
                  f"{popular.recall:.4f} / {popular.ndcg:.4f}; {test.shape[1]} held-out pairs "
                  f"of {data.num_users} users, split seed {seed})")
        return 0
    if not isinstance(model, GCN):
        raise CommandError(f"{args.checkpoint} holds a {type(model).__name__}, not a GCN: it "
                           f"cannot classify {args.dataset}'s members")
    from wally.autograd import no_grad
    from wally.data.graphs import karate_club

    data = load_cora(args) if args.dataset == "cora" else karate_club()
    if model.in_channels != data.num_node_features:
        raise CommandError(f"{args.checkpoint} takes {model.in_channels} features per node, "
                           f"but {args.dataset} has {data.num_node_features}")
    with no_grad():
        predictions = model(data.x, data.edge_index).array.argmax(axis=1)
    mask = data.test_mask.array
    right = int((predictions[mask] == data.y.array[mask]).sum())
    accuracy = right / int(mask.sum())
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "dataset": args.dataset,
                          "test_accuracy": accuracy, "test_right": right}))
    else:
        what = "test papers" if args.dataset == "cora" else "unlabelled members"
        print(f"test accuracy {accuracy:.4f} ({right}/{int(mask.sum())} {what})")
    return 0


def is_graph_model(model: Any) -> bool:
    """Whether ``model`` is one of wally's graph models (its input is a graph, not an image)."""
    from wally.models import GCN, LightGCN

    return isinstance(model, (GCN, LightGCN))


def summary_graph(args: argparse.Namespace, model: Any) -> int:
    """``wally summary gcn|lightgcn``: the per-layer table on a real graph (karate for a GCN,
    the Debian graph's training edges for a LightGCN, unless ``--dataset``), then the k-hop
    receptive field of each propagating layer."""
    from wally.analysis import summary
    from wally.cli._datasets import RECSYS_DATASETS
    from wally.geometric.fields import graph_fields
    from wally.models import LightGCN

    if args.input_size is not None:
        raise CommandError(f"--input-size: {args.model} takes a graph, not an image; give "
                           f"--dataset karate, debian or movielens-100k instead")
    recsys = isinstance(model, LightGCN)
    dataset = args.dataset or ("debian" if recsys else "karate")
    if recsys != (dataset in RECSYS_DATASETS):
        raise CommandError(f"--dataset {dataset}: a {type(model).__name__} runs on "
                           + ("a user-item graph (debian, movielens-100k)" if recsys
                              else "karate"))
    if recsys:
        from wally.geometric.recommend import bipartite_edge_index

        args.dataset = dataset
        data = load_interactions(args)
        nodes = data.num_users + data.num_items
        if model.num_nodes != nodes:
            raise CommandError(f"{args.model} has {model.num_nodes} node embeddings, but "
                               f"{dataset} has {nodes} users and items")
        train, _ = data.split(RECSYS_DEFAULTS["test_fraction"], seed=0)
        edge_index = bipartite_edge_index(train, data.num_users)
        inputs: tuple = (edge_index,)
    else:
        from wally.data.graphs import karate_club

        graph = karate_club()
        if model.in_channels != graph.num_node_features:
            raise CommandError(f"{args.model} takes {model.in_channels} features per node, "
                               f"but karate has {graph.num_node_features}")
        edge_index, nodes = graph.edge_index, graph.num_nodes
        inputs = (graph.x, edge_index)
    result = summary(model, input_data=inputs, depth=args.depth, col_names=args.col_names,
                     verbose=0)
    fields = graph_fields(model, edge_index, nodes)
    if args.json:
        payload = json.loads(result.to_json())
        payload["graph"] = dataset
        payload["graph_receptive_field"] = fields.to_dict()
        print(json.dumps(payload, indent=2))
    elif args.markdown:
        print(result.to_markdown(), end="")
        print(f"\n```\n{fields}\n```")
    else:
        print(f"on {dataset}:")
        print(result)
        print(fields)
    return 0
