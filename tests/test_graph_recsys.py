"""LightGCN, the BPR loss and Recall@K / NDCG@K against PyG (``models.LightGCN``,
``BPRLoss``, ``metrics.LinkPredRecall`` / ``LinkPredNDCG``) and against loops written out."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import wally
from wally.geometric.metrics import bpr_loss, ndcg_at_k, recall_at_k
from wally.models import LightGCN

pyg = pytest.importorskip("torch_geometric", reason="pip install torch-geometric to compare")
warnings.filterwarnings("ignore", message=".*(torch-scatter|torch-sparse|pyg-lib).*")


def _bipartite(seed, users=4, items=5, m=12):
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, users, m), users + rng.integers(0, items, m)
    return np.stack([np.concatenate([u, i]), np.concatenate([i, u])]), users + items


@pytest.mark.parametrize("layers", [1, 3])
def test_lightgcn_matches_pyg(torch, layers):
    from torch_geometric.nn.models import LightGCN as PygLightGCN

    index, n = _bipartite(layers)
    ours, theirs = LightGCN(n, 4, layers), PygLightGCN(n, 4, layers)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    pairs = np.array([[0, 1, 2, 3], [4, 6, 8, 5]])
    negatives = np.array([[0, 1, 2, 3], [7, 4, 5, 8]])
    pos_w, neg_w = ours(wally.tensor(index), wally.tensor(pairs)), \
        ours(wally.tensor(index), wally.tensor(negatives))
    pos_t, neg_t = theirs(torch.tensor(index), torch.tensor(pairs)), \
        theirs(torch.tensor(index), torch.tensor(negatives))
    np.testing.assert_allclose(pos_w.detach().numpy(), pos_t.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    loss_w = ours.recommendation_loss(pos_w, neg_w, lambda_reg=1e-2)
    loss_t = theirs.recommendation_loss(pos_t, neg_t, lambda_reg=1e-2)
    np.testing.assert_allclose(loss_w.item(), loss_t.item(), rtol=1e-5)
    loss_w.backward()
    loss_t.backward()
    np.testing.assert_allclose(ours.embedding.weight.grad.numpy(),
                               theirs.embedding.weight.grad.numpy(), rtol=1e-4, atol=1e-7)
    users, items = torch.arange(4), torch.arange(4, n)
    np.testing.assert_array_equal(
        ours.recommend(wally.tensor(index), src_index=wally.tensor(users.numpy()),
                       dst_index=wally.tensor(items.numpy()), k=3).numpy(),
        theirs.recommend(torch.tensor(index), src_index=users, dst_index=items, k=3).numpy())


def test_bpr_loss_matches_pyg_and_the_formula(torch):
    from torch_geometric.nn.models.lightgcn import BPRLoss

    rng = np.random.default_rng(0)
    pos, neg = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    params = rng.standard_normal((3, 2)).astype(np.float32)
    ours = bpr_loss(wally.tensor(pos), wally.tensor(neg), wally.tensor(params), lambda_reg=0.1)
    theirs = BPRLoss(0.1)(torch.tensor(pos), torch.tensor(neg), torch.tensor(params))
    formula = -np.mean([math.log(1 / (1 + math.exp(-(p - q)))) for p, q in zip(pos, neg)]) \
        + 0.1 * (params ** 2).sum() / 6
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
    np.testing.assert_allclose(ours.item(), formula, rtol=1e-5)


def _loops(top, labels, k):
    """Recall@K and NDCG@K for each user, written out."""
    recalls, ndcgs = [], []
    for user, row in enumerate(top):
        relevant = [int(i) for u, i in labels.T if u == user]
        if not relevant:
            continue
        hits = [int(i) in relevant for i in row[:k]]
        recalls.append(sum(hits) / len(relevant))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
        ndcgs.append(dcg / ideal)
    return (np.mean(recalls) if recalls else 0.0), (np.mean(ndcgs) if ndcgs else 0.0)


@settings(max_examples=40, derandomize=True)
@given(users=st.integers(1, 6), items=st.integers(2, 9), held=st.integers(0, 15),
       k=st.integers(1, 5), seed=st.integers(0, 999))
@example(users=1, items=9, held=15, k=2, seed=0)  # more held-out items than k
@example(users=3, items=4, held=0, k=3, seed=1)  # nothing held out
def test_recall_and_ndcg_match_pyg_and_loops(torch, users, items, held, k, seed):
    from torch_geometric.metrics import LinkPredNDCG, LinkPredRecall

    rng = np.random.default_rng(seed)
    width = min(items, 5)
    top = np.stack([rng.permutation(items)[:width] for _ in range(users)])
    labels = np.unique(np.stack([rng.integers(0, users, held), rng.integers(0, items, held)]),
                       axis=1) if held else np.zeros((2, 0), dtype=np.int64)
    recall, ndcg = recall_at_k(top, labels, k), ndcg_at_k(top, labels, k)
    for metric, ours in ((LinkPredRecall(k), recall), (LinkPredNDCG(k), ndcg)):
        metric.update(torch.tensor(top), torch.tensor(labels))
        np.testing.assert_allclose(ours, float(metric.compute()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose((recall, ndcg), _loops(top, labels, k), rtol=1e-9)


def test_ranking_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match=r"recall_at_k: expected edge_label_index of integers "
                                         r"\(2, L\), got shape \(3, 1\)"):
        recall_at_k(np.array([[1, 2]]), np.array([[0], [1], [2]]), 2)
    with pytest.raises(ValueError, match="ndcg_at_k: k must be a positive integer, got 0"):
        ndcg_at_k(np.array([[1, 2]]), np.array([[0], [1]]), 0)
    with pytest.raises(ValueError, match="recall_at_k: edge_label_index users must be below 1"):
        recall_at_k(np.array([[1, 2]]), np.array([[3], [1]]), 2)
    with pytest.raises(ValueError, match=r"bpr_loss: expected positives and negatives of one "
                                         r"shape"):
        bpr_loss(wally.ones(3), wally.ones(2))
