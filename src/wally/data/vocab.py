"""A tokenizer and its vocabulary: text to the integer ids an ``nn.Embedding`` looks up.

A :class:`Vocab` is a list of tokens; a token's id is its place in the list. Id 0 is always
``<pad>`` (what short texts are padded with: ``nn.Embedding(..., padding_idx=0)``), id 1 always
``<unk>`` (what every token outside the vocabulary becomes). Two tokenizers:

- ``level="char"``: every character is a token (letters, digits, punctuation and the space);
  nothing is out of reach of the alphabet, and a character never seen in training is ``<unk>``;
- ``level="word"``: runs of letters and digits, and each other non-space character, are tokens
  (``"Don't!"`` → ``["don", "'", "t", "!"]`` with ``lower=True``).

Whitespace runs become one space first (``" ".join(text.split())``), so a fortune's line breaks
and indentation don't count as evidence.

A vocabulary is saved as JSON, never pickled: beside the weights in a checkpoint
(``extra={"vocab": vocab.to_dict()}``, which :func:`wally.io.save_checkpoint` stores) or in its
own file (:meth:`Vocab.save`, atomically). Reading one back is strict: a document that isn't a
wally vocabulary, lacks ``<pad>``/``<unk>`` in their places, repeats a token or holds a
non-string is refused with a ``ValueError`` naming the file and the first thing wrong.

>>> vocab = Vocab.build(["abba", "abc"], level="char")
>>> vocab.tokens
['<pad>', '<unk>', 'a', 'b', 'c']
>>> vocab.encode("cab!", length=6)     # '!' was never seen: <unk>; padded with <pad> to 6
[4, 2, 3, 1, 0, 0]
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wally.backend import ndarray, xp

__all__ = ["Vocab", "PAD", "UNK", "tokenize", "normalize_text", "MAX_TOKENS"]

PAD, UNK = "<pad>", "<unk>"
FORMAT = "wally.vocab"
LEVELS = ("char", "word")
MAX_TOKENS = 1_000_000
"""The most tokens a vocabulary (built or read) may hold."""
MAX_TOKEN_CHARS = 100
_WORD = re.compile(r"\w+|[^\w\s]")


def normalize_text(text: str) -> str:
    """``text`` in Unicode NFC with every run of whitespace made one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def tokenize(text: str, level: str = "char", lower: bool = False) -> list[str]:
    """The tokens of ``text``: its characters (``"char"``) or its words and punctuation marks
    (``"word"``), after :func:`normalize_text` (and lower-casing if ``lower``)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a str, got {type(text).__name__}")
    if level not in LEVELS:
        raise ValueError(f"tokenize: level must be one of {LEVELS}, got {level!r}")
    text = normalize_text(text)
    if lower:
        text = text.lower()
    return list(text) if level == "char" else _WORD.findall(text)


class Vocab:
    """Tokens and their ids; ``<pad>`` is 0 and ``<unk>`` is 1.

    Args:
        tokens: the vocabulary in id order, starting ``["<pad>", "<unk>", ...]``.
        level: ``"char"`` or ``"word"`` (module docs).
        lower: lower-case texts before tokenizing.

    ``len(vocab)`` is what ``nn.Embedding``'s ``num_embeddings`` must be.
    """

    def __init__(self, tokens: Sequence[str], level: str = "char", lower: bool = False) -> None:
        _check_tokens(tokens, "Vocab")
        if level not in LEVELS:
            raise ValueError(f"Vocab: level must be one of {LEVELS}, got {level!r}")
        self.tokens = list(tokens)
        self.level = level
        self.lower = bool(lower)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    pad_index = 0
    unk_index = 1

    @classmethod
    def build(cls, texts: Iterable[str], level: str = "char", lower: bool = False,
              min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """The vocabulary of ``texts``: every token seen at least ``min_freq`` times, most
        frequent first (ties in code-point order, so the same texts always give the same ids),
        at most ``max_size`` tokens in all (``<pad>`` and ``<unk>`` included)."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be a positive integer, got {min_freq!r}")
        limit = MAX_TOKENS if max_size is None else max_size
        if isinstance(limit, bool) or not isinstance(limit, int) or not 2 <= limit <= MAX_TOKENS:
            raise ValueError(f"Vocab.build: max_size must be from 2 to {MAX_TOKENS:,}, got "
                             f"{max_size!r}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text, level, lower))
        kept = sorted((t for t, n in counts.items() if n >= min_freq and t not in (PAD, UNK)),
                      key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *kept[:limit - 2]], level, lower)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, level={self.level!r}, lower={self.lower})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and self.tokens == other.tokens
                and self.level == other.level and self.lower == other.lower)

    def encode(self, text: str, length: int | None = None) -> list[int]:
        """The ids of ``text``'s tokens; a token outside the vocabulary is ``<unk>`` (1).
        With ``length``: cut to ``length`` ids, or padded with ``<pad>`` (0) up to it."""
        ids = [self.index.get(token, self.unk_index)
               for token in tokenize(text, self.level, self.lower)]
        if length is None:
            return ids
        return ids[:length] + [self.pad_index] * max(0, length - len(ids))

    def unknown(self, text: str) -> list[str]:
        """The tokens of ``text`` that the vocabulary lacks (each becomes ``<unk>``), in order,
        each once."""
        seen: dict[str, None] = {}
        for token in tokenize(text, self.level, self.lower):
            if token not in self.index:
                seen.setdefault(token)
        return list(seen)

    def decode(self, ids: Iterable[int]) -> str:
        """The tokens of ``ids`` joined (by nothing for characters, a space for words), padding
        left out."""
        parts = [self.tokens[int(i)] for i in ids if int(i) != self.pad_index]
        return ("" if self.level == "char" else " ").join(parts)

    def encode_batch(self, texts: Sequence[str], length: int) -> ndarray:
        """``texts`` as one int64 array ``(len(texts), length)``, each cut or padded."""
        out = xp.zeros((len(texts), length), dtype=xp.int64)
        for row, text in enumerate(texts):
            ids = self.encode(text, length)
            out[row] = ids
        return out

    # ----- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The vocabulary as a JSON object (what a checkpoint's ``extra["vocab"]`` holds)."""
        return {"format": FORMAT, "version": 1, "level": self.level, "lower": self.lower,
                "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, document: Any, where: str = "vocabulary") -> Vocab:
        """The vocabulary of a :meth:`to_dict` object, refused (``ValueError`` naming
        ``where``) unless it is one exactly."""
        if not isinstance(document, Mapping):
            raise ValueError(f"{where}: expected a JSON object with format {FORMAT!r}, got "
                             f"{type(document).__name__}")
        if document.get("format") != FORMAT or document.get("version") != 1:
            raise ValueError(f"{where}: not a wally vocabulary (format "
                             f"{str(document.get('format'))[:40]!r}, version "
                             f"{str(document.get('version'))[:20]}; expected {FORMAT!r}, 1)")
        level, lower = document.get("level"), document.get("lower")
        if level not in LEVELS:
            raise ValueError(f"{where}: level must be one of {LEVELS}, got "
                             f"{str(level)[:40]!r}")
        if not isinstance(lower, bool):
            raise ValueError(f"{where}: lower must be true or false, got {str(lower)[:40]}")
        _check_tokens(document.get("tokens"), where)
        return cls(document["tokens"], level, lower)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary to ``path`` as JSON, atomically."""
        from wally.io.atomic import atomic_write

        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"
        atomic_write(path, text.encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """The vocabulary :meth:`save` wrote to ``path`` (strict: module docs)."""
        from wally.io.files import read_text

        text = read_text(path, "vocabulary", max_bytes=64 << 20)
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"{path}: the vocabulary is not valid JSON ({error})") from None
        return cls.from_dict(document, str(path))


def _check_tokens(tokens: Any, where: str) -> None:
    if not isinstance(tokens, list | tuple):
        raise ValueError(f"{where}: tokens must be a list of strings, got "
                         f"{type(tokens).__name__}")
    if not 2 <= len(tokens) <= MAX_TOKENS:
        raise ValueError(f"{where}: expected 2 to {MAX_TOKENS:,} tokens, got {len(tokens):,}")
    if list(tokens[:2]) != [PAD, UNK]:
        raise ValueError(f"{where}: tokens must start with {PAD!r} (id 0) and {UNK!r} (id 1), "
                         f"got {[str(t)[:20] for t in tokens[:2]]}")
    seen: set[str] = set()
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise ValueError(f"{where}: token {i} is {str(token)[:40]!r}, not a string of 1 to "
                             f"{MAX_TOKEN_CHARS} characters")
        if token in seen:
            raise ValueError(f"{where}: token {i} ({token[:40]!r}) appears twice")
        seen.add(token)
