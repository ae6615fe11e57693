"""The text datasets of the command line: read, tokenized by the run's vocabulary, and batched
as token ids for a text model (``textcnn``).

A training run builds its vocabulary from the training split (characters, every one seen,
lower-cased by the recipe: :class:`wally.data.vocab.Vocab`) and records it beside the weights
(``extra["vocab"]`` of the checkpoint, ``"vocab"`` of ``config.json``), with how texts are read
(:func:`reading`): in training, a window of 16 to ``max_length`` characters (``--input-size``,
default 128: :data:`RECIPE`) at a random offset of each longer text; in evaluation, the whole
text (``"eval_length": null``). ``wally eval`` and ``wally predict`` read both back from the
checkpoint; a character the vocabulary lacks counts as ``<unk>``. A checkpoint written before
``eval_length`` existed lacks the key and is read as it was trained, cut to its first
``max_length`` characters, by a vocabulary that keeps case (``"lower": false``, as its
vocabulary says).
"""

from __future__ import annotations

import argparse
from typing import Any

from wally.cli import CommandError

TEXT_MODELS = ["textcnn"]
RECIPE: dict[str, Any] = {"optimizer": "adam", "lr": 2e-3, "batch_size": 64, "epochs": 15,
                          "scheduler": "cosine", "max_length": 128, "min_length": 16,
                          "lower": True, "crop": "random", "eval_length": None,
                          "num_filters": 300}
"""The default recipe for text datasets: Adam at 2e-3 annealed to 0 along a cosine over 15
epochs, batch 64; characters lower-cased (``lower``, saved with the vocabulary); each training
text read as a window of 16 to 128 characters (``min_length`` to ``max_length``, the latter
``--input-size``), its length and offset drawn anew each epoch (``crop``), and every text read
whole in evaluation (``eval_length`` None); ``textcnn`` built with 300 feature maps of each
width (``num_filters``; Kim's 100 is the model's default). Chosen on fortunes with a
validation split carved from the training texts (``benchmarks/text_targets.py`` lists what was
tried and what each gave): windows of random length with 300 maps for 15 epochs made 14 and 16
of 2,882 errors over two seeds, where the earlier recipe (windows of 128, 100 maps, 10 epochs)
made 22 and 19; random lengths alone (10 epochs: 20 and 19) and 300 maps alone (21, in an
earlier round) stayed within the seeds' spread. Image datasets keep d2l's recipe."""
DEFAULT_LENGTH: int = RECIPE["max_length"]


def read_texts(name: str, train: bool, data_dir: str | None = None, download: bool = False,
               classes: list[str] | None = None) -> tuple[list[str], Any, list[str]]:
    """A split's texts, int64 labels and class names; the dataset's own errors become one
    line. ``fortunes``: the languages ``classes`` (a checkpoint's), or else every language
    installed (at least two; the missing ones are named on stderr)."""
    from wally.data import text
    from wally.data.errors import DatasetFormatError, DatasetNotFoundError

    try:
        if name == "fortunes":
            languages = classes if classes is not None else _installed(data_dir)
            dataset: Any = text.Fortunes(root=data_dir, train=train, languages=languages)
        else:
            dataset = text.AGNews(root=data_dir, train=train, download=download)
    except (DatasetNotFoundError, DatasetFormatError, ValueError) as error:
        raise CommandError(str(error)) from None
    return list(dataset.texts), dataset.targets, list(dataset.classes)


def _installed(data_dir: str | None) -> list[str] | None:
    import sys

    from wally.data.text import _PACKAGES, LANGUAGES, available_languages

    found = available_languages(data_dir)
    if len(found) < 2:
        return None  # Fortunes names what is missing
    missing = [c for c in sorted(LANGUAGES) if c not in found]
    if missing:
        print(f"wally: fortunes: {len(found)} of {len(LANGUAGES)} languages installed "
              f"({', '.join(found)}); to add the others: apt-get install "
              f"{' '.join(_PACKAGES[c] for c in missing)}", file=sys.stderr)
    return found


def _limited(texts: list[str], labels: Any, limit: int | None) -> tuple[list[str], Any]:
    return (texts, labels) if limit is None else (texts[:limit], labels[:limit])


def text_sets(texts: list[str], labels: Any, test_texts: list[str], test_labels: Any,
              classes: list[str] | None = None, *, length: int = DEFAULT_LENGTH,
              recipe: dict[str, Any] = RECIPE) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The vocabulary of ``texts``, the training and test sets read as ``recipe`` says
    (``lower``, ``crop``, ``eval_length``; ``length`` characters at a time in training), and
    what a checkpoint records of them (:func:`reading`). ``wally train``, the benchmark and
    the example all build their sets here, so they train the same recipe."""
    from wally.data.text import TokenizedText
    from wally.data.vocab import Vocab

    vocab = Vocab.build(texts, level="char", lower=recipe["lower"])
    eval_length = recipe["eval_length"]
    shortest = recipe.get("min_length")
    shortest = None if shortest is None or recipe["crop"] != "random" else min(shortest, length)
    train_set = TokenizedText(texts, labels, vocab, length, classes, crop=recipe["crop"],
                              min_length=shortest)
    test_set = TokenizedText(test_texts, test_labels, vocab, eval_length, classes)
    return vocab, train_set, test_set, {"vocab": vocab.to_dict(), "max_length": length,
                                        "min_length": shortest, "crop": recipe["crop"],
                                        "eval_length": eval_length}


def eval_loader(dataset: Any, batch_size: int) -> Any:
    """A loader over a text set for evaluation: texts of similar length batched together
    (:meth:`TokenizedText.batches_by_length`), since read whole they differ a hundredfold."""
    from wally.data import DataLoader

    return DataLoader(dataset, batch_sampler=dataset.batches_by_length(batch_size))


def prepare(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``wally train`` on a text dataset: the model, the training and test sets, and what the
    checkpoint records beside the weights (the vocabulary and how texts are read)."""
    from wally.models import get_model

    texts, labels, classes = read_texts(args.dataset, True, args.data_dir, args.download)
    test_texts, test_labels, _ = read_texts(args.dataset, False, args.data_dir, args.download,
                                            classes)
    texts, labels = _limited(texts, labels, args.limit)
    test_texts, test_labels = _limited(test_texts, test_labels, args.limit)
    length = args.input_size if args.input_size is not None else DEFAULT_LENGTH
    vocab, train_set, test_set, extra = text_sets(texts, labels, test_texts, test_labels,
                                                  classes, length=length)
    try:
        model = get_model(args.model, vocab_size=len(vocab), num_classes=len(classes),
                          max_length=length, num_filters=RECIPE["num_filters"])
    except ValueError as error:
        raise CommandError(str(error)) from None
    return model, train_set, test_set, extra


def vocab_of(checkpoint: Any) -> Any:
    """The vocabulary a checkpoint records (``extra["vocab"]``), or None for an image model;
    refused, naming the file, when it is malformed."""
    from wally.data.vocab import Vocab

    document = checkpoint.extra.get("vocab")
    if document is None:
        return None
    try:
        return Vocab.from_dict(document, f"{checkpoint.path}: its vocabulary")
    except ValueError as error:
        raise CommandError(str(error)) from None


def length_of(model: Any, checkpoint: Any) -> int:
    """The text length the model was trained on (``model.input_size``, else the checkpoint's
    ``max_length``), refused unless a positive integer within the 1-D input limit (the
    longest ``--input-size`` that ``wally train`` takes for a text model)."""
    from wally.models.registry import MAX_INPUT_VALUES

    size = getattr(model, "input_size", None) or [checkpoint.extra.get("max_length")]
    length = size[0] if size else None
    if isinstance(length, bool) or not isinstance(length, int) or not \
            1 <= length <= MAX_INPUT_VALUES:
        raise CommandError(f"{checkpoint.path}: its text length is {str(length)[:40]}, not a "
                           "positive integer")
    return length


def reading(model: Any, checkpoint: Any) -> int | None:
    """How many characters of a text ``wally eval`` and ``wally predict`` read: the
    checkpoint's ``eval_length`` (None: the whole text), or, in a checkpoint written before
    the key existed, the length it was trained on (it read the first ``max_length``)."""
    from wally.models.registry import MAX_INPUT_VALUES

    if "eval_length" not in checkpoint.extra:
        return length_of(model, checkpoint)
    length = checkpoint.extra["eval_length"]
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                               or not 1 <= length <= MAX_INPUT_VALUES):
        raise CommandError(f"{checkpoint.path}: its eval_length is {str(length)[:40]}, not "
                           "null (the whole text) or a positive integer")
    return length


def load(name: str, train: bool, vocab: Any, length: int | None, *, data_dir: str | None = None,
         download: bool = False, limit: int | None = None,
         classes: list[str] | None = None) -> Any:
    """A split of a text dataset encoded with a checkpoint's ``vocab`` (``wally eval``), each
    text cut to ``length`` characters (None: whole), its ``classes`` (fortunes: the languages
    the model was trained on)."""
    from wally.data.text import TokenizedText

    texts, labels, classes = read_texts(name, train, data_dir, download, classes)
    texts, labels = _limited(texts, labels, limit)
    return TokenizedText(texts, labels, vocab, length, classes)


def encode_for_prediction(texts: list[tuple[str, str]], vocab: Any, length: int | None) -> Any:
    """``(label, text)`` pairs as one int64 batch ``(N, L)``, each text cut to ``length``
    tokens (None: whole) and padded to the longest; an empty text is refused, and the
    characters outside the vocabulary are named on stderr (they count as ``<unk>``)."""
    import sys

    from wally.backend import xp
    from wally.cli import printable
    from wally.data.vocab import tokenize

    for label, text in texts:
        if not tokenize(text, vocab.level, vocab.lower):
            raise CommandError(f"{printable(label)}: the text is empty (nothing to classify)")
        unknown = vocab.unknown(text)
        if unknown:
            shown = " ".join(repr(t) for t in unknown[:10]) + (" ..." if len(unknown) > 10
                                                                else "")
            print(f"wally predict: {printable(label)}: {len(unknown)} "
                  f"{'character' if vocab.level == 'char' else 'word'}"
                  f"{'s' if len(unknown) > 1 else ''} outside the model's vocabulary, read as "
                  f"<unk>: {printable(shown)}", file=sys.stderr)
    from wally.data.text import TokenizedText

    batch = TokenizedText([text for _, text in texts], [0] * len(texts), vocab, length)
    return xp.ascontiguousarray(batch.ids_of(xp.arange(len(texts))))
