"""The recommendation targets of issue 15: LightGCN against most-popular and BPR-MF on the
Debian package→library graph (wally.data.recsys.debian_depends), Recall@20 and NDCG@20.

LightGCN's number of layers is chosen on a validation split carved out of the training pairs
(20% of each user's training items, seed ``seed + 1``), never on the test pairs; BPR-MF is the
same model with 0 layers, trained with the same loss, sampler, optimiser, epochs and lr. Then
all three are trained on the whole training split and scored on the test split.

    PYTHONPATH=src python benchmarks/recsys_targets.py [--epochs 30] [--seed 0] [--json out]
"""

from __future__ import annotations

import argparse
import json
import time

import wally
from wally.data.recsys import Interactions, debian_depends
from wally.geometric.recommend import evaluate_scores, model_scores, most_popular_scores, train_bpr
from wally.models import get_model


def run(data: Interactions, train, test, layers: int, epochs: int, seed: int):
    wally.manual_seed(seed)
    model = get_model("lightgcn", num_nodes=data.num_users + data.num_items, num_layers=layers)
    train_bpr(model, train, data.num_users, data.num_items, epochs=epochs, seed=seed)
    return evaluate_scores(f"{layers} layers", model_scores(model, train, data.num_users),
                           train, test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = debian_depends()
    train, test = data.split(0.2, seed=args.seed)
    inner = Interactions(train, data.user_names, data.item_names, data.name)
    fit, valid = inner.split(0.2, seed=args.seed + 1)
    report: dict = {"epochs": args.epochs, "seed": args.seed, "validation": {}}
    for layers in (1, 2, 3):
        start = time.perf_counter()
        result = run(data, fit, valid, layers, args.epochs, args.seed)
        report["validation"][layers] = {"recall@20": result.recall, "ndcg@20": result.ndcg,
                                        "seconds": round(time.perf_counter() - start, 1)}
        print(f"validation, {layers} layers: Recall@20 {result.recall:.4f} "
              f"NDCG@20 {result.ndcg:.4f}", flush=True)
    best = max(report["validation"], key=lambda n: report["validation"][n]["recall@20"])
    report["chosen_layers"] = best
    results = [evaluate_scores("most-popular", most_popular_scores(
        train, data.num_users, data.num_items), train, test),
        run(data, train, test, 0, args.epochs, args.seed),
        run(data, train, test, best, args.epochs, args.seed)]
    results[1].name, results[2].name = "bpr-mf", f"lightgcn ({best} layers)"
    report["test"] = {r.name: {"recall@20": r.recall, "ndcg@20": r.ndcg} for r in results}
    for r in results:
        print(f"test, {r.name:22} Recall@20 {r.recall:.4f}  NDCG@20 {r.ndcg:.4f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
