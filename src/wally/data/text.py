"""Text-classification datasets: Debian's fortunes by language (offline), and AG News.

``Fortunes``: language identification over the fortune cookies that Debian's ``fortunes*``
packages install (``apt-get install fortunes fortunes-de fortunes-it fortunes-es fortunes-ru
fortunes-pl fortunes-cs fortunes-br fortunes-eo``): nine languages, each a class,

    cs (Czech), de (German), en (English), eo (Esperanto), es (Spanish), it (Italian),
    pl (Polish), pt (Brazilian Portuguese), ru (Russian).

Which files, and why:

- each language is the package's own folder under ``root`` (``/usr/share/games/fortunes`` by
  default): ``de/``, ``it/``, ... ; English is the ``fortunes`` package's topic files at the top
  (:data:`ENGLISH_FILES`, named, since other packages put links and files there too), and
  Portuguese is fortunes-br's one file, ``brasil``;
- left out: the offensive collections (every ``off`` folder: Debian keeps them apart, and so
  does this dataset), ASCII-art files (``art``, ``ascii-art``, ``asciiart``, ``banner``: drawings
  say nothing of a language), Slovak ``klasik-sk`` inside the Czech package, ``translate-me``,
  ``.dat``/``.u8`` index files and links (Debian links the same files under several names);
  Irish (fortunes-ga, 157 proverbs) is too small to be a class;
- a fortune file is cookies separated by lines holding only ``%``; each is decoded strictly as
  UTF-8 (every file these packages ship is UTF-8 today; a file in another encoding is refused,
  naming the file and byte, rather than guessed at), whitespace runs made one space, and empty
  ones dropped;
- a text found in two languages' files (English quotations inside the Polish package, say) is
  dropped from both, since its label would be a coin toss; one found twice in a language is kept
  once;
- the split is by hashing, so it never changes with file order or new files: a text is in the
  test split when the SHA-256 of its UTF-8 bytes, read as a number, is 0 modulo 5 (about 20%);
- balance: at most ``max_per_class`` texts per language (default 2,000; the lowest hashes,
  again independent of file order), because the packages differ tenfold in size; every
  language has more than 2,000 (Esperanto, the smallest, 2,626 proverbs). With the packages of
  this Debian that gives 14,408 training texts (1,592 to 1,613 per language) and 3,592 test
  texts (387 to 408), so the majority class is 11.4% of the test split
  (:meth:`Fortunes.class_counts`). The texts of a split come in hash order, the languages
  mixed, so the first N of a split are a fair sample.

``AGNews``: the AG News topic benchmark (Zhang et al. 2015; 120,000 training and 7,600 test news
articles in four classes, World, Sports, Business, Sci/Tech), as ``train.csv``/``test.csv``
with rows ``"class","title","description"``, class 1 to 4, downloaded with their MD5 from the
mirror torchtext uses. A text is ``title + " " + description`` with the CSV's ``\\n`` escapes
made spaces.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wally.backend import ndarray, xp
from wally.data.dataset import Dataset
from wally.data.download import DOWNLOAD_HINT, dataset_folder, not_found_message
from wally.data.download import download as fetch_file
from wally.data.errors import DatasetFormatError, DatasetNotFoundError
from wally.data.vocab import Vocab, normalize_text

__all__ = ["Fortunes", "AGNews", "TokenizedText", "read_fortune_file", "text_split",
           "available_languages", "CROPS",
           "FORTUNES_ROOT", "LANGUAGES", "ENGLISH_FILES"]

FORTUNES_ROOT = "/usr/share/games/fortunes"
LANGUAGES = {"cs": "Czech", "de": "German", "en": "English", "eo": "Esperanto",
             "es": "Spanish", "it": "Italian", "pl": "Polish", "pt": "Portuguese",
             "ru": "Russian"}
ENGLISH_FILES = (
    "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
    "ethnic", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux",
    "linuxcookie", "literature", "love", "magic", "medicine", "men-women", "miscellaneous",
    "news", "paradoxum", "people", "perl", "pets", "platitudes", "politics", "pratchett",
    "riddles", "science", "songs-poems", "sports", "startrek", "tao", "wisdom", "work",
    "zippy")
_PACKAGES = {"cs": "fortunes-cs", "de": "fortunes-de", "en": "fortunes", "eo": "fortunes-eo",
             "es": "fortunes-es", "it": "fortunes-it", "pl": "fortunes-pl", "pt": "fortunes-br",
             "ru": "fortunes-ru"}
_LEFT_OUT = {"art", "ascii-art", "asciiart", "banner", "klasik-sk", "translate-me"}
MAX_FORTUNE_FILE_BYTES = 64 << 20


def text_split(text: str) -> str:
    """``"test"`` when the SHA-256 of ``text``'s UTF-8 bytes is 0 modulo 5, else ``"train"``."""
    return "test" if int(_digest(text), 16) % 5 == 0 else "train"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_fortune_file(path: str | os.PathLike[str]) -> list[str]:
    """The cookies of one fortune file: ``%``-line separated, strict UTF-8, whitespace runs made
    one space, empty ones dropped. Raises :class:`DatasetFormatError` naming the file and byte
    when it is not UTF-8."""
    from wally.io.files import read_regular

    data = read_regular(path, "fortune file", MAX_FORTUNE_FILE_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFormatError(f"{path}: not UTF-8 (byte {error.start:,}: "
                                 f"{data[error.start:error.start + 4]!r}); fortune files are "
                                 "read as UTF-8 only") from None
    cookies: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.rstrip("\r") == "%":
            cookies.append(normalize_text("\n".join(lines)))
            lines = []
        else:
            lines.append(line)
    cookies.append(normalize_text("\n".join(lines)))
    return [c for c in cookies if c]


def _language_files(root: Path, language: str) -> list[Path]:
    if language == "en":
        names = [root / name for name in ENGLISH_FILES]
        return [p for p in names if p.is_file()]
    if language == "pt":
        return [p for p in [root / "brasil"] if p.is_file()]
    folder = root / language
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
            and p.name not in _LEFT_OUT and p.name.removesuffix(".fortunes") not in _LEFT_OUT]


def available_languages(root: str | os.PathLike[str] | None = None) -> list[str]:
    """The languages of :data:`LANGUAGES` whose fortune files are under ``root``, sorted."""
    folder = Path(root if root is not None else FORTUNES_ROOT).expanduser()
    return [c for c in sorted(LANGUAGES) if folder.is_dir() and _language_files(folder, c)]


class Fortunes(Dataset[tuple[str, int]]):
    """Language identification over Debian's fortune cookies (module docs: which files, the
    split and the balance).

    Args:
        root: the fortunes folder (default ``/usr/share/games/fortunes``).
        train: the training split (else the test split).
        languages: the classes, in order (default: all nine, sorted).
        max_per_class: at most this many texts per language, before splitting (None: all).

    ``dataset[i]`` is ``(text, class index)``; ``texts``, ``targets`` (int64) and ``classes``
    (the language codes) hold them all.

    Raises:
        DatasetNotFoundError: the folder, or a language's files, are missing (the message names
            the Debian package to install).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 languages: Sequence[str] | None = None, max_per_class: int | None = 2000
                 ) -> None:
        self.root = Path(root if root is not None else FORTUNES_ROOT).expanduser()
        self.train = train
        self.classes = sorted(LANGUAGES) if languages is None else list(languages)
        unknown = [c for c in self.classes if c not in LANGUAGES]
        if unknown or not self.classes:
            raise ValueError(f"Fortunes: languages must be some of {sorted(LANGUAGES)}, got "
                             f"{self.classes}")
        if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(
                max_per_class, int) or max_per_class < 1):
            raise ValueError(f"Fortunes: max_per_class must be a positive integer or None, got "
                             f"{max_per_class!r}")
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"Fortunes: no folder {self.root}; install the Debian packages "
                f"({' '.join(_PACKAGES[c] for c in self.classes)}) or pass root=")
        found: dict[str, set[str]] = {}
        for language in self.classes:
            files = _language_files(self.root, language)
            if not files:
                raise DatasetNotFoundError(
                    f"Fortunes: no {LANGUAGES[language]} fortune files in {self.root} (apt-get "
                    f"install {_PACKAGES[language]})")
            found[language] = {text for path in files for text in read_fortune_file(path)}
        owners: dict[str, int] = {}
        for texts in found.values():
            for text in texts:
                owners[text] = owners.get(text, 0) + 1
        split = "train" if train else "test"
        chosen: list[tuple[str, str, int]] = []
        for label, language in enumerate(self.classes):
            unique = sorted((_digest(t), t) for t in found[language] if owners[t] == 1)
            chosen += [(_digest("order\n" + text), text, label)
                       for _, text in unique[:max_per_class] if text_split(text) == split]
        # in the order of another hash (not the one the cap took the lowest of): the languages
        # mixed evenly, so the first N of a split are a fair sample
        chosen.sort()
        self.texts = [text for _, text, _ in chosen]
        self.targets = xp.asarray([label for _, _, label in chosen], dtype=xp.int64)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], int(self.targets[index])

    def class_counts(self) -> dict[str, int]:
        """How many texts of each class this split holds."""
        counts = xp.bincount(self.targets, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}

    def __repr__(self) -> str:
        return (f"Dataset Fortunes\n    Number of datapoints: {len(self)}\n    Root location: "
                f"{self.root}\n    Split: {'Train' if self.train else 'Test'}")


class AGNews(Dataset[tuple[str, int]]):
    """AG News (module docs): ``<root>/AGNews/train.csv`` and ``test.csv``.

    Args:
        root: the folder holding ``AGNews/`` (module docs of :mod:`wally.data.download`).
        train: ``train.csv`` (else ``test.csv``).
        download: fetch the file (MD5 verified) if it is missing.

    ``dataset[i]`` is ``(title + " " + description, class index 0..3)``.
    """

    classes = ["World", "Sports", "Business", "Sci/Tech"]
    mirrors = ["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/"
               "ag_news_csv/"]
    md5 = {"train.csv": "b1a00f826fdfbd249f79597b59e1dc12",
           "test.csv": "d52ea96a97a2d943681189a97654912d"}
    max_bytes = 64 << 20  # train.csv is 29.5 MB

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 download: bool = False) -> None:
        self.folder = dataset_folder("AGNews", root)
        self.train = train
        name = "train.csv" if train else "test.csv"
        path = self.folder / name
        urls = [mirror + name for mirror in self.mirrors]
        if not path.exists():
            if not download:
                raise DatasetNotFoundError(not_found_message(
                    "AGNews", self.folder, {name: urls}, f"{name} is missing; {DOWNLOAD_HINT}"))
            try:
                fetch_file(urls, path, md5=self.md5[name], max_bytes=self.max_bytes)
            except ConnectionError as error:
                raise DatasetNotFoundError(not_found_message(
                    "AGNews", self.folder, {name: urls},
                    f"{name} is missing and could not be downloaded:\n{error}")) from error
        self.texts, self.targets = read_ag_news_csv(path, self.max_bytes)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], int(self.targets[index])


def read_ag_news_csv(path: str | os.PathLike[str], max_bytes: int | None = None
                     ) -> tuple[list[str], ndarray]:
    """The texts and 0-based labels of an AG News CSV, refused (:class:`DatasetFormatError`
    with the file and line) unless every row is ``class,title,description`` with class 1 to 4."""
    from wally.io.files import read_regular

    data = read_regular(path, "AG News CSV", max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFormatError(f"{path}: not UTF-8 (byte {error.start:,})") from None
    texts, labels = [], []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if len(row) != 3:
                raise DatasetFormatError(f"{where}: expected 3 fields (class, title, "
                                         f"description), got {len(row)}")
            if row[0].strip() not in ("1", "2", "3", "4"):
                raise DatasetFormatError(f"{where}: the class is {row[0][:20]!r}, expected 1 "
                                         "to 4")
            labels.append(int(row[0]) - 1)
            texts.append(normalize_text((row[1] + " " + row[2]).replace("\\n", " ")))
    except csv.Error as error:
        raise DatasetFormatError(f"{path}, line {reader.line_num}: malformed CSV ({error})"
                                 ) from None
    if not texts:
        raise DatasetFormatError(f"{path}: no rows")
    return texts, xp.asarray(labels, dtype=xp.int64)


CROPS = ("start", "random")


class TokenizedText(Dataset[tuple[Any, int]]):
    """Texts encoded by a :class:`Vocab` for a text CNN, each read whole or cut to ``length``
    tokens.

    Args:
        texts, labels: the texts and their class indices.
        vocab: the tokenizer and its ids.
        length: the most tokens of a text read at once; None reads every text whole.
        classes: the class names.
        crop: which ``length`` tokens of a longer text are read: ``"start"``, the first ones
            (the same every time); ``"random"``, a window of ``length`` consecutive tokens at
            an offset drawn anew each time the text is read, uniformly over every offset that
            fits (a training augmentation: every part of a long text gets seen). The offsets
            come from :func:`wally.data.generator`, so inside a DataLoader they follow the
            loader's seed and a run repeats exactly.
        min_length: with ``crop="random"``, windows of random length: each read first draws
            a window length uniformly from ``min_length .. length``, then an offset as above;
            a text no longer than the drawn length is read whole. A training augmentation
            that shows the model short pieces of long texts (on fortunes, with three times
            the feature maps, it took the validation errors from 22 and 19 to 14 and 16 over
            two seeds: ``benchmarks/text_targets.py``). None (the default): every window is
            ``length`` tokens.

    ``dataset[i]`` is ``(ids, label)``: with ``length``, ``(length,)`` int64 padded with
    ``<pad>`` (0); without, the whole text's ids (at least one: an empty text is one
    ``<pad>``). A DataLoader takes whole batches through ``_get_batch``: a batch is ``(N, L)``
    with ``L`` its longest (cut) text, the shorter ones padded with ``<pad>``, as
    ``pad_sequence(batch_first=True)`` would give. The tokens are kept once, end to end, so a
    corpus with a few very long texts costs its own size, not ``N`` times the longest.

    Shape:
        a batch of ``N`` texts: ``(N, L)``, ``L = max(1, max_i min(T_i, length))``.
    """

    def __init__(self, texts: Sequence[str], labels: Any, vocab: Vocab, length: int | None,
                 classes: list[str] | None = None, *, crop: str = "start",
                 min_length: int | None = None) -> None:
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                                   or length < 1):
            raise ValueError(f"TokenizedText: length must be a positive integer or None, got "
                             f"{length!r}")
        if crop not in CROPS:
            raise ValueError(f"TokenizedText: crop must be one of {CROPS}, got {crop!r}")
        if min_length is not None:
            if crop != "random" or length is None:
                raise ValueError(f"TokenizedText: min_length needs crop='random' and a length, "
                                 f"got crop={crop!r}, length={length!r}")
            if isinstance(min_length, bool) or not isinstance(min_length, int) or \
                    not 1 <= min_length <= length:
                raise ValueError(f"TokenizedText: min_length must be an integer from 1 to the "
                                 f"length {length}, got {min_length!r}")
        self.min_length = min_length
        self.vocab = vocab
        self.length = length
        self.crop = crop
        encoded = [vocab.encode(text) for text in texts]
        self.lengths = xp.asarray([len(ids) for ids in encoded], dtype=xp.int64)
        self.offsets = xp.zeros(len(encoded) + 1, dtype=xp.int64)
        xp.cumsum(self.lengths, out=self.offsets[1:])
        self.tokens = xp.asarray([i for ids in encoded for i in ids], dtype=xp.int64)
        self.labels = xp.asarray(labels, dtype=xp.int64)
        if len(self.labels) != len(encoded):
            raise ValueError(f"TokenizedText: {len(encoded)} texts but {len(self.labels)} "
                             "labels")
        self.classes = classes or []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from wally.creation import from_numpy

        rows = self.ids_of(xp.asarray([index], dtype=xp.intp), pad_to=self.length)
        return from_numpy(rows[0]), int(self.labels[index])

    def _get_batch(self, indices: ndarray) -> list[Any]:
        from wally.creation import from_numpy

        return [from_numpy(self.ids_of(indices)), from_numpy(self.labels[indices])]

    def batches_by_length(self, batch_size: int) -> list[list[int]]:
        """Index lists of ``batch_size`` texts of similar (cut) length, shortest first: a
        ``batch_sampler`` for evaluation, where the order does not matter and a batch costs
        ``N`` times its longest text. Read whole in the order of the split, fortunes' test
        texts cost 10.7 times their own length at batch 64; sorted, 1.7 times."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TokenizedText: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        kept = self.lengths if self.length is None else xp.minimum(self.lengths, self.length)
        order = xp.argsort(kept, kind="stable").tolist()
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def ids_of(self, indices: ndarray, pad_to: int | None = None) -> ndarray:
        """``(len(indices), L)`` ids: each text cut (module docs), padded to ``pad_to`` or to
        the longest of them."""
        from wally.data._random import generator

        full = self.lengths[indices]
        kept = full if self.length is None else xp.minimum(full, self.length)
        starts = xp.zeros_like(full)
        if self.crop == "random" and self.length is not None and len(indices):
            rng = generator()
            if self.min_length is not None:  # the window's length first, then its offset
                kept = xp.minimum(full, rng.integers(self.min_length, self.length + 1,
                                                     size=len(indices)))
            # one draw per text, even one that fits, so the stream never depends on lengths
            starts = rng.integers(0, full - kept + 1)
        width = pad_to if pad_to is not None else max(1, int(kept.max()) if len(kept) else 1)
        steps = xp.arange(width)[None, :]
        inside = steps < kept[:, None]
        where = self.offsets[indices][:, None] + starts[:, None] + steps
        out = xp.zeros((len(indices), width), dtype=xp.int64)
        out[inside] = self.tokens[where[inside]]
        return out
