"""TextCNN (Kim 2014) over characters: which of nine languages a fortune cookie is written in.

The texts are the fortune cookies of Debian's ``fortunes*`` packages (``wally.data.Fortunes``:
Czech, German, English, Esperanto, Spanish, Italian, Polish, Brazilian Portuguese and Russian,
at most 2,000 texts each, the split fixed by hashing each text: 14,408 training and 3,592 test
texts with this Debian's packages). Install them with::

    apt-get install fortunes fortunes-de fortunes-it fortunes-es fortunes-ru fortunes-pl \\
        fortunes-cs fortunes-br fortunes-eo

A text is a row of character ids (the training texts' characters, lower-cased,
:class:`wally.data.vocab.Vocab`). ``textcnn`` trains with ``wally train``'s recipe for text
datasets (:data:`wally.cli._text.RECIPE`, the sets built by :func:`wally.cli._text.text_sets`):
each training text read as a window of 16 to ``max_length`` characters (its length and offset
drawn anew each epoch), each test text read whole, 300 feature maps of each width. The issue's
target is to match a TF-IDF character n-gram + logistic-regression baseline on the same split,
which this script also fits when scikit-learn is installed (``TfidfVectorizer(analyzer=
"char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=2)``, ``LogisticRegression(C=10,
max_iter=1000)``, on the whole text)::

    python examples/text_language_id.py --output figures           # the full recipe
    python examples/text_language_id.py --quick --output /tmp/lid    # 600 texts, 2 epochs

It prints the train loss and test accuracy after every epoch and writes
``OUTPUT/text_language_id.png``: the train loss (left) and the test accuracy (right) per epoch,
with the baseline's accuracy as a dashed line. The test split is only watched, never used to
choose anything (the recipe was chosen on a validation split carved from the training texts;
``benchmarks/text_targets.py`` records how).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

import wally
from wally import optim
from wally.cli._text import RECIPE, eval_loader, text_sets
from wally.data import DataLoader
from wally.data.text import Fortunes
from wally.train import fit
from wally.viz import plot_curves


def baseline_accuracy(train_texts: list[str], train_labels: Any, test_texts: list[str],
                      test_labels: Any) -> float:
    """The TF-IDF character 1-4-gram + logistic-regression test accuracy (scikit-learn)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                                 min_df=2)
    classifier = LogisticRegression(C=10, max_iter=1000).fit(
        vectorizer.fit_transform(train_texts), train_labels)
    return float((classifier.predict(vectorizer.transform(test_texts)) == test_labels).mean())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None,
                        help="the fortunes folder (default /usr/share/games/fortunes)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--quick", action="store_true",
                        help="the first 600 training and 300 test texts, 2 epochs")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the scikit-learn baseline")
    parser.add_argument("--output", default=".", help="folder for the PNG (default: here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    train, test = Fortunes(args.root, train=True), Fortunes(args.root, train=False)
    train_texts, train_labels = train.texts, train.targets
    test_texts, test_labels = test.texts, test.targets
    if args.quick:
        train_texts, train_labels = train_texts[:600], train_labels[:600]
        test_texts, test_labels = test_texts[:300], test_labels[:300]
    print(f"Fortunes: {len(train_texts):,} training and {len(test_texts):,} test texts in "
          f"{len(train.classes)} languages ({', '.join(train.classes)})", flush=True)

    baseline = None
    if not args.no_baseline and importlib.util.find_spec("sklearn") is not None:
        baseline = baseline_accuracy(train_texts, train_labels, test_texts, test_labels)
        print(f"TF-IDF char 1-4-grams + logistic regression: test accuracy {baseline:.4f}",
              flush=True)

    wally.manual_seed(args.seed)
    length = RECIPE["max_length"]
    vocab, train_set, test_set, _ = text_sets(train_texts, train_labels, test_texts,
                                              test_labels, length=length)
    model = wally.models.textcnn(vocab_size=len(vocab), num_classes=len(train.classes),
                                 max_length=length, num_filters=RECIPE["num_filters"])
    train_loader = DataLoader(train_set, batch_size=RECIPE["batch_size"], shuffle=True,
                              generator=args.seed)
    test_loader = eval_loader(test_set, 256)
    optimizer = optim.Adam(model.parameters(), lr=RECIPE["lr"])  # the recipe's "adam"
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    print(f"textcnn: {len(vocab)} characters, windows of {RECIPE['min_length']} to {length} in "
          f"training, whole texts "
          f"in test, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; Adam {RECIPE['lr']} "
          f"cosine, batch {RECIPE['batch_size']}, {epochs} epochs", flush=True)

    def report(record: dict[str, Any]) -> None:
        print(f"  epoch {record['epoch']:2d}: train loss {record['train_loss']:.4f}  "
              f"test accuracy {record['val_accuracy']:.4f}  ({record['seconds']:.0f} s)",
              flush=True)

    start = time.perf_counter()
    history = fit(model, train_loader, test_loader, optimizer=optimizer, epochs=epochs,
                  scheduler=scheduler, callbacks=[report], progress=False)
    seconds = time.perf_counter() - start
    accuracy = history.records[-1]["val_accuracy"]
    versus = "" if baseline is None else f" vs the baseline's {baseline:.4f}"
    reference = None if baseline is None else {"TF-IDF + logistic regression": baseline}
    figure = plot_curves(
        history.records, Path(args.output) / "text_language_id.png", val_label="test",
        reference=reference,
        title=f"TextCNN, language of Debian fortunes: test accuracy {accuracy:.4f}{versus}").path
    print(f"TextCNN, {epochs} epochs: test accuracy {accuracy:.4f}{versus}, {seconds:.0f} s; "
          f"figure {figure}")
    return {"test_accuracy": accuracy, "baseline": baseline, "epochs": epochs,
            "figure": str(figure), "records": history.records}


if __name__ == "__main__":
    main()
