"""Recommendation training and ranking: the masked top-K, most-popular, BPR-MF as LightGCN
without layers, the negative sampler, BPR training on a planted two-community graph, and
``wally train lightgcn`` / ``wally eval`` on the Debian graph."""

from __future__ import annotations

import json

import numpy as np
import pytest

import wally
from wally.cli import main
from wally.data.recsys import Interactions
from wally.geometric import recommend
from wally.geometric.metrics import ndcg_at_k, recall_at_k
from wally.geometric.recommend import (
    bipartite_edge_index,
    evaluate_scores,
    model_scores,
    most_popular_scores,
    train_bpr,
)
from wally.models import LightGCN


def test_evaluate_scores_never_recommends_training_items_and_breaks_ties_by_number():
    scores = np.array([[9.0, 8.0, 1.0, 1.0, 0.0], [0.0, 5.0, 5.0, 7.0, 1.0]])
    train = np.array([[0, 0, 1], [0, 1, 3]])
    test = np.array([[0, 1], [3, 1]])
    result = evaluate_scores("s", scores, train, test, k=2)
    # user 0 ranks 2, 3 (tied: 2 first), user 1 ranks 1, 2 (tied: 1 first), 3 being seen
    top = np.array([[2, 3], [1, 2]])
    assert (result.recall, result.ndcg) == (recall_at_k(top, test, 2), ndcg_at_k(top, test, 2))
    assert result.recall == 1.0
    assert evaluate_scores("s", scores, train, np.array([[0], [2]]), k=1).recall == 1.0


def test_most_popular_counts_training_users():
    train = np.array([[0, 1, 2, 2], [1, 1, 1, 0]])
    np.testing.assert_array_equal(most_popular_scores(train, 3, 3), [[1, 3, 0]] * 3)


def test_bpr_mf_is_lightgcn_without_layers():
    wally.manual_seed(0)
    model = LightGCN(5, 3, num_layers=0)
    weight = model.embedding.weight.detach().numpy()
    train = np.array([[0, 1], [0, 2]])
    np.testing.assert_allclose(model_scores(model, train, 2), weight[:2] @ weight[2:].T,
                               rtol=1e-6)
    assert bipartite_edge_index(train, 2).numpy().tolist() == [[0, 1, 2, 4], [2, 4, 0, 1]]


def test_negatives_are_never_training_items():
    rng = np.random.default_rng(0)
    seen = rng.random((50, 6)) < 0.8
    seen[:, 0] = False  # every user has an unseen item
    users = np.repeat(np.arange(50), 20)
    items = recommend._negatives(rng, users, seen, 6)
    assert not seen[users, items].any()


def _communities(seed=0, users=60, items=24):
    """Two communities: users of one take items of their half, a few of the other's."""
    rng = np.random.default_rng(seed)
    pairs = set()
    for u in range(users):
        half = (u % 2) * (items // 2)
        for i in rng.choice(items // 2, 6, replace=False):
            pairs.add((u, half + int(i)))
        pairs.add((u, int(rng.integers(0, items))))
    data = Interactions(np.array(sorted(pairs)).T, [str(u) for u in range(users)],
                        [str(i) for i in range(items)])
    return data, *data.split(0.25, seed=seed)


def test_bpr_training_is_reproducible_learns_and_beats_popularity():
    data, train, test = _communities()
    runs = []
    for _ in range(2):
        wally.manual_seed(1)
        model = LightGCN(data.num_users + data.num_items, 8, num_layers=2)
        losses = train_bpr(model, train, data.num_users, data.num_items, epochs=25,
                           batch_size=64, lr=0.05, seed=1)
        runs.append((losses, model_scores(model, train, data.num_users)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    losses, scores = runs[0]
    assert losses[-1] < 0.5 * losses[0]
    popular = evaluate_scores("pop", most_popular_scores(train, data.num_users, data.num_items),
                              train, test, k=5)
    ours = evaluate_scores("lightgcn", scores, train, test, k=5)
    assert ours.recall > popular.recall + 0.2, (ours, popular)


def test_cli_trains_lightgcn_against_both_baselines_and_eval_repeats_the_figure(tmp_path,
                                                                                capsys):
    out = tmp_path / "run"
    assert main(["train", "lightgcn", "--dataset", "debian", "--epochs", "1", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3221 users x 447 items, 33163 training pairs, 8654 held out" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["results"]) == {"most-popular", "bpr-mf", "lightgcn"}
    for name, result in metrics["results"].items():
        assert f"{name:14}{result['recall@20']:10.4f}{result['ndcg@20']:10.4f}" in printed
    assert main(["eval", str(out / "checkpoint.safetensors"), "--dataset", "debian",
                 "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["recall@20"] == metrics["results"]["lightgcn"]["recall@20"]
    assert scored["ndcg@20"] == metrics["results"]["lightgcn"]["ndcg@20"]
    assert scored["most_popular_recall@20"] == metrics["results"]["most-popular"]["recall@20"]


@pytest.mark.parametrize("argv, message", [
    (["train", "gcn", "--dataset", "debian"], "debian is a user-item graph: train lightgcn"),
    (["train", "lightgcn", "--dataset", "karate"], "karate is a node classification graph: "
                                                   "train gcn on it, not lightgcn"),
])
def test_cli_refuses_a_model_on_the_wrong_kind_of_graph(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_cli_eval_refuses_a_mismatched_checkpoint(tmp_path, capsys):
    from wally.io.checkpoint import save_checkpoint
    from wally.models import get_model

    small = tmp_path / "small.safetensors"
    save_checkpoint(small, get_model("lightgcn", num_nodes=10), extra={"dataset": "debian"})
    assert main(["eval", str(small), "--dataset", "debian"]) != 0
    assert "has 10 node embeddings, but debian has 3668 users and items" in capsys.readouterr().err
    assert main(["eval", str(small), "--dataset", "karate"]) != 0
    assert "holds a LightGCN, not a GCN" in capsys.readouterr().err
