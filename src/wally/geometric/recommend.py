r"""Training and ranking for recommendation: LightGCN and BPR matrix factorisation trained with
the BPR loss, a most-popular baseline, and Recall@K / NDCG@K over the held-out pairs.

BPR-MF (Rendle et al. 2009) is LightGCN with no propagation layers: one embedding per user and
item, a pair scored by their dot product, trained with the same loss, sampler and optimiser. So
the comparison isolates what the graph convolution adds. Most-popular ranks every user's unseen
items by how many training users have them.

Users and items share one node numbering, users ``0..U-1`` and items ``U..U+I-1``, as PyG's
LightGCN example lays them out; ``edge_index`` holds every training pair in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wally import optim
from wally.autograd import no_grad
from wally.backend import ndarray, xp
from wally.geometric.metrics import ndcg_at_k, recall_at_k
from wally.tensor import Tensor

__all__ = ["RankingResult", "bipartite_edge_index", "evaluate_scores", "most_popular_scores",
           "train_bpr", "model_scores"]


@dataclass
class RankingResult:
    """Recall@K and NDCG@K of one ranker, and the losses of its training (if it trained)."""

    name: str
    recall: float
    ndcg: float
    k: int
    losses: list[float] = field(default_factory=list)


def bipartite_edge_index(train: ndarray, num_users: int) -> Tensor:
    """``(2, 2E)``: every (user, item) pair as user→item and item→user, items offset by
    ``num_users``."""
    u, i = train[0], train[1] + num_users
    return Tensor(xp.stack([xp.concatenate([u, i]), xp.concatenate([i, u])]).astype(xp.int64))


def _negatives(rng: Any, users: ndarray, seen: ndarray, num_items: int) -> ndarray:
    """One item per user drawn uniformly from those the user has not got in training (redrawn
    until unseen; ``seen`` is the (U, I) boolean matrix)."""
    items = rng.integers(0, num_items, users.shape[0])
    clash = seen[users, items]
    while clash.any():
        items[clash] = rng.integers(0, num_items, int(clash.sum()))
        clash = seen[users, items]
    return items


def train_bpr(model: Any, train: ndarray, num_users: int, num_items: int, epochs: int = 30,
              batch_size: int = 2048, lr: float = 0.01, lambda_reg: float = 1e-4,
              seed: int = 0) -> list[float]:
    """Adam on LightGCN's ``recommendation_loss`` (BPR with the L2 penalty on the batch's
    embeddings, as PyG's example): each epoch visits every training pair once in random order,
    each with one unseen item as its negative. Returns the mean loss of each epoch."""
    rng = xp.random.default_rng(seed)
    edge_index = bipartite_edge_index(train, num_users)
    seen = xp.zeros((num_users, num_items), dtype=bool)
    seen[train[0], train[1]] = True
    optimizer = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        order = rng.permutation(train.shape[1])
        total = 0.0
        for start in range(0, order.shape[0], batch_size):
            batch = order[start:start + batch_size]
            users, items = train[0, batch], train[1, batch]
            negatives = _negatives(rng, users, seen, num_items)
            optimizer.zero_grad()
            embedding = model.get_embedding(edge_index)
            u = embedding[Tensor(users)]
            pos = (u * embedding[Tensor(items + num_users)]).sum(dim=-1)
            neg = (u * embedding[Tensor(negatives + num_users)]).sum(dim=-1)
            nodes = Tensor(xp.concatenate([users, items + num_users, negatives + num_users]))
            loss = model.recommendation_loss(pos, neg, node_id=nodes, lambda_reg=lambda_reg)
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * batch.shape[0]
        losses.append(total / order.shape[0])
    model.eval()
    return losses


def model_scores(model: Any, train: ndarray, num_users: int) -> ndarray:
    """``(U, I)``: every user's score for every item under ``model`` (propagated over the
    training graph)."""
    with no_grad():
        embedding = model.get_embedding(bipartite_edge_index(train, num_users)).array
    return embedding[:num_users] @ embedding[num_users:].T


def most_popular_scores(train: ndarray, num_users: int, num_items: int) -> ndarray:
    """``(U, I)``: each item's number of training users, the same for every user."""
    counts = xp.bincount(train[1], minlength=num_items).astype(xp.float64)
    return xp.broadcast_to(counts, (num_users, num_items)).copy()


def evaluate_scores(name: str, scores: ndarray, train: ndarray, test: ndarray,
                    k: int = 20) -> RankingResult:
    """Rank each user's items by ``scores`` with their training items removed, and score the
    top ``k`` against ``test`` with Recall@K and NDCG@K (users without test items left out)."""
    masked = xp.array(scores, dtype=xp.float64, copy=True)
    masked[train[0], train[1]] = -xp.inf
    # a stable sort on the negated scores: ties go to the lower item number, reproducibly
    top = xp.argsort(-masked, axis=1, kind="stable")[:, :k]
    return RankingResult(name, recall_at_k(top, test, k), ndcg_at_k(top, test, k), k)
