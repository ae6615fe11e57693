r"""Ranking for recommendation: the BPR loss and Recall@K / NDCG@K, with PyG's semantics
(``torch_geometric.nn.models.lightgcn.BPRLoss``, ``torch_geometric.metrics.LinkPredRecall`` and
``LinkPredNDCG``).

A recommender ranks items for each user; ``pred_index_mat`` ``(U, K)`` holds each user's top
``K`` item indices, best first, and ``edge_label_index`` ``(2, L)`` the held-out (user, item)
pairs the ranking should find. Users without held-out items are left out of the mean.
"""

from __future__ import annotations

from typing import Any

from wally import functional as F
from wally.backend import ndarray, xp
from wally.tensor import Tensor

__all__ = ["bpr_loss", "ndcg_at_k", "recall_at_k"]


def bpr_loss(positives: Tensor, negatives: Tensor, parameters: Tensor | None = None,
             lambda_reg: float = 0.0) -> Tensor:
    r"""Bayesian Personalised Ranking (Rendle et al. 2009), as the mean PyG computes:

    .. math::  L = -\frac{1}{B} \sum_b \ln \sigma(\hat y_{u_b i_b} - \hat y_{u_b j_b})
               + \frac{\lambda}{B} \lVert \theta \rVert^2

    with :math:`i_b` an item user :math:`u_b` chose and :math:`j_b` one they did not.

    Shape:
        - ``positives``, ``negatives``: ``(B,)``; output: a scalar.

    Example::

        >>> bpr_loss(wally.tensor([2.0]), wally.tensor([0.0])).item()   # -ln σ(2)
        0.12692...
    """
    if tuple(positives.shape) != tuple(negatives.shape) or positives.dim() != 1:
        raise ValueError(f"bpr_loss: expected positives and negatives of one shape (B,), got "
                         f"{tuple(positives.shape)} and {tuple(negatives.shape)}")
    loss = -F.logsigmoid(positives - negatives).mean()
    if lambda_reg != 0:
        if parameters is None:
            raise ValueError("bpr_loss: lambda_reg needs the parameters to regularise")
        loss = loss + lambda_reg * parameters.pow(2).sum() / positives.shape[0]
    return loss


def _relevance(name: str, pred_index_mat: Any, edge_label_index: Any,
               k: int) -> tuple[ndarray, ndarray]:
    """``hits (U, k)``: whether each of the top ``k`` is a held-out pair; ``counts (U,)``."""
    top = xp.asarray(getattr(pred_index_mat, "array", pred_index_mat))
    labels = xp.asarray(getattr(edge_label_index, "array", edge_label_index))
    if top.ndim != 2 or top.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected pred_index_mat of integers (users, K), got shape "
                         f"{top.shape} and dtype {top.dtype}")
    if labels.ndim != 2 or labels.shape[0] != 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected edge_label_index of integers (2, L), got shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name}: k must be a positive integer, got {k!r}")
    users = top.shape[0]
    if labels.size and (labels[0].min() < 0 or labels[0].max() >= users):
        raise ValueError(f"{name}: edge_label_index users must be below {users} (the rows of "
                         f"pred_index_mat), got {int(labels[0].max())}")
    top = top[:, :k]
    held_out = {(int(u), int(i)) for u, i in labels.T}
    hits = xp.array([[(u, int(i)) in held_out for i in row] for u, row in enumerate(top)],
                    dtype=bool).reshape(top.shape)
    # every held-out pair counts, a repeated one too, as PyG counts them
    counts = xp.bincount(labels[0], minlength=users) if labels.size else xp.zeros(users, int)
    return hits, counts


def recall_at_k(pred_index_mat: Any, edge_label_index: Any, k: int) -> float:
    r"""Recall@K: :math:`\frac{1}{|U^+|} \sum_{u \in U^+} \frac{|\mathrm{top}_k(u) \cap
    R_u|}{|R_u|}`, over the users :math:`U^+` with held-out items :math:`R_u` (PyG's
    ``LinkPredRecall``).

    Example::

        >>> recall_at_k(wally.tensor([[3, 1]]), wally.tensor([[0, 0], [1, 2]]), k=2)
        0.5
    """
    hits, counts = _relevance("recall_at_k", pred_index_mat, edge_label_index, k)
    users = counts > 0
    if not users.any():
        return 0.0
    return float((hits.sum(axis=1)[users] / counts[users]).mean())


def ndcg_at_k(pred_index_mat: Any, edge_label_index: Any, k: int) -> float:
    r"""NDCG@K with binary relevance: :math:`\mathrm{DCG}_u = \sum_{r=1}^{k}
    \frac{[\mathrm{top}_k(u)_r \in R_u]}{\log_2(r + 1)}` over the ideal
    :math:`\sum_{r=1}^{\min(k, |R_u|)} \frac{1}{\log_2(r + 1)}`, averaged over the users with
    held-out items (PyG's ``LinkPredNDCG``).

    Example::

        >>> ndcg_at_k(wally.tensor([[1, 3]]), wally.tensor([[0], [3]]), k=2)   # 1/log2(3)
        0.6309...
    """
    hits, counts = _relevance("ndcg_at_k", pred_index_mat, edge_label_index, k)
    users = counts > 0
    if not users.any():
        return 0.0
    discount = 1.0 / xp.log2(xp.arange(2, hits.shape[1] + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = xp.concatenate([[0.0], xp.cumsum(1.0 / xp.log2(xp.arange(2, k + 2)))])
    return float((dcg[users] / ideal[xp.minimum(counts[users], k)]).mean())
