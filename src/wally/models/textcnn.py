"""TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

A text is a row of token ids. Each id becomes a learnt vector (``nn.Embedding``), so the text is
an ``embedding_dim``-channel sequence; convolutions of several widths (3, 4 and 5 tokens, 100
feature maps each) slide along it, each followed by ReLU and max-over-time pooling, which keeps
the strongest match of each feature map anywhere in the text. The pooled features, concatenated,
go through dropout (0.5) to one linear layer that gives the class scores.

Padding: a batch holds texts padded with ``<pad>`` (id 0) to one length. Each convolution pads
``k − 1`` steps on both sides (as Kim's code pads every sentence), so a text shorter than the
widest kernel still has outputs, and output ``t`` of a width-``k`` convolution sees tokens
``t − k + 1 … t``. Max-over-time pooling counts only the outputs that see at least one real
token: the mask is computed from the ids inside the model (``ids.float().clamp(max=1)``, then a
width-``k`` window maximum), so an exported ONNX graph does the same. An empty text counts as
one ``<pad>`` token.
"""

from __future__ import annotations

from collections.abc import Sequence

from wally import nn
from wally.backend import xp
from wally.creation import from_numpy
from wally.models.registry import register_model
from wally.nn import functional as F
from wally.ops import cat, maximum
from wally.tensor import Tensor

__all__ = ["TextCNN", "textcnn"]


class TextCNN(nn.Module):
    """Embedding, parallel convolutions of ``kernel_sizes`` with ReLU and max-over-time pooling,
    dropout, linear (module docs).

    Shape:
        - Input: ``(N, L)`` int64 token ids, 0 the padding; any ``L ≥ 1``.
        - Output: ``(N, num_classes)`` logits.
    """

    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int,
                 kernel_sizes: Sequence[int], num_filters: int, dropout: float,
                 padding_idx: int = 0) -> None:
        super().__init__()
        self.kernel_sizes = [int(k) for k in kernel_sizes]
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, num_filters, k, padding=k - 1)
                                   for k in self.kernel_sizes)
        self.pool = nn.MaxOverTime()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters * len(self.kernel_sizes), num_classes)

    def token_mask(self, ids: Tensor) -> Tensor:
        """``(N, 1, L)``: 1 at real tokens, 0 at padding; the first step always 1."""
        if self.padding_idx != 0:
            raise ValueError(f"TextCNN: the token mask needs padding_idx 0, got "
                             f"{self.padding_idx}")
        mask = ids.float().clamp(max=1.0)  # ids are >= 0: padding 0, any token 1
        first = xp.zeros((1, ids.shape[1]), dtype=xp.float32)
        first[0, 0] = 1.0
        return maximum(mask, from_numpy(first)).reshape(ids.shape[0], 1, ids.shape[1])

    def forward(self, ids: Tensor) -> Tensor:
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"TextCNN: expected token ids (N, L) of an integer dtype, got "
                             f"{ids.dtype} {tuple(ids.shape)}")
        x = self.embedding(ids).permute(0, 2, 1)  # (N, embedding_dim, L)
        tokens = self.token_mask(ids)
        pooled = []
        for k, conv in zip(self.kernel_sizes, self.convs):
            # output t sees tokens t-k+1..t: valid when any of them is a real token
            seen = F.max_pool1d(F.pad(tokens, (k - 1, k - 1)), k, stride=1)
            pooled.append(self.pool(F.relu(conv(x)), mask=seen.reshape(ids.shape[0], -1)))
        return self.fc(self.dropout(cat(pooled, dim=1)))


@register_model(spatial_dims=1)
def textcnn(
    vocab_size: int = 256,
    num_classes: int = 2,
    embedding_dim: int = 64,
    kernel_sizes: Sequence[int] = (3, 4, 5),
    num_filters: int = 100,
    dropout: float = 0.5,
    max_length: int = 256,
) -> TextCNN:
    """Kim's TextCNN (module docs): widths 3, 4, 5 with 100 maps each, dropout 0.5.

    Args:
        vocab_size: rows of the embedding (``len(vocab)``; id 0 is ``<pad>``).
        num_classes: outputs.
        embedding_dim: channels of each token's vector (Kim: 300 for words; 64 suits
            characters).
        kernel_sizes: the convolution widths, in tokens.
        num_filters: feature maps per width.
        dropout: drop probability before the linear layer.
        max_length: the text length the model is meant for (``model.input_size = (L,)``, what
            ``summary`` and ONNX export use); the model itself takes any length.

    Parameters: 94,086 at the defaults (16,384 in the embedding, 19,300 + 25,700 + 32,100 in
    the three convolutions, 602 in the linear layer). Each pooled feature of width ``k`` sees
    ``k`` consecutive tokens; the logits see the whole text.

    Shape:
        - Input: ``(N, L)`` int64 token ids.
        - Output: ``(N, num_classes)`` logits.
    """
    for what, n in (("vocab_size", vocab_size), ("num_classes", num_classes),
                    ("embedding_dim", embedding_dim), ("num_filters", num_filters),
                    ("max_length", max_length)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"textcnn: {what} must be a positive integer, got {n!r}")
    if vocab_size < 2:
        raise ValueError(f"textcnn: vocab_size must be at least 2 (<pad> and <unk>), got "
                         f"{vocab_size}")
    widths = list(kernel_sizes)
    if not widths or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                             for k in widths):
        raise ValueError(f"textcnn: kernel_sizes must be positive integers, got {kernel_sizes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"textcnn: dropout must be in [0, 1), got {dropout!r}")
    model = TextCNN(vocab_size, num_classes, embedding_dim, widths, num_filters, dropout)
    model.input_size = (max_length,)
    model.input_dtype = xp.dtype(xp.int64)  # what summary and export feed it: token ids
    return model
