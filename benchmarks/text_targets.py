"""Issue 14's text target: TextCNN at least matches a TF-IDF character n-gram + logistic
regression baseline, both measured on the same split in the same run.

The task is language identification over Debian's fortune cookies (:class:`wally.data.Fortunes`:
nine languages, the split fixed by hashing each text). Both models see the same training texts
and are scored on the same test texts:

- baseline: scikit-learn ``TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4),
  sublinear_tf=True, min_df=2)`` and ``LogisticRegression(C=10, max_iter=1000)``, on the whole
  text;
- TextCNN: ``wally.models.textcnn`` as ``wally train`` builds it (character embedding 64,
  widths 3, 4, 5 with 300 maps each, ``--filters``, dropout 0.5), the sets built by
  :func:`wally.cli._text.text_sets` as ``wally train`` builds them: the character vocabulary of
  the training texts, lower-cased; each training text read as a window of 16 to ``--length``
  (128) characters (``--min-length``), its length and offset drawn anew every epoch from the
  loader's seed; each test text read whole (``--eval-length whole``). It trains with ``wally
  train``'s text recipe (:data:`wally.cli._text.RECIPE`): Adam at 2e-3 annealed to 0 along a
  cosine, batch 64, 15 epochs.

Run::

    python -m benchmarks.text_targets                 # full: the test split
    python -m benchmarks.text_targets --validation    # choosing: 4/5 of train vs the other 1/5
    python -m benchmarks.text_targets --limit 600 --epochs 3   # a quick look

It prints both accuracies side by side with the command, and whether the target holds;
``--json FILE`` writes them with every setting. Recipes are chosen with ``--validation`` (every
fifth training text held out, the test split unread), never on the test split.

Measured (Debian's packages as installed here: 14,408 training and 3,592 test texts, majority
class 0.1136; 11,526 training and 2,882 validation texts with ``--validation``). The baseline
scores 0.9947 on test and 0.9969 on validation (9 of 2,882 wrong) in every run.

Choosing, first round (validation split, seed 0). The first rows were trained by a PyTorch
copy of ``textcnn`` (the same layers, padding mask, optimiser and batching, torch's own random
numbers), when wally's epochs were too slow on the shared machine for a search; the others by
wally, ``python -m benchmarks.text_targets --validation`` with the options shown. In this round
every text was read with case, cut to its first ``--length`` characters in training and test
(today's ``--case keep --crop start --eval-length 128``). Every row is Adam 2e-3 annealed along
a cosine, batch 64:

==================================================================  ==========
TextCNN recipe                                                      validation
==================================================================  ==========
PyTorch: defaults, 256 characters, 6 epochs                         0.9899
PyTorch: same with max- and mean-over-time pooling concatenated     0.9899
PyTorch: defaults, 128 characters, 6 epochs                         0.9896
wally: defaults, 128 characters, 6 epochs                           0.9910
wally: ``--epochs 10`` (the recipe then)                            0.9927
wally: ``--epochs 20``                                              0.9927
wally: ``--filters 300`` (300 maps of each width), 6 epochs         0.9920
wally: ``--filters 300 --epochs 10``                                0.9927
baseline (TF-IDF + logistic regression)                             0.9969
==================================================================  ==========

Mean pooling, which gives the convolutions the n-gram counts TF-IDF has, adds nothing; 128
characters do as well as 256 at half the cost (the median fortune is 86 characters); 10
epochs beat 6, and 20 add nothing. Three times the feature maps end where the default does
after 10 epochs, at three times the cost; the recipe keeps Kim's architecture. (A 10-epoch
Adam 1e-3 run, a wider set, 400 maps of each of the widths 1 to 4 with both poolings, and a
test run of ``--filters 300 --epochs 10`` were stopped for lack of time before they gave a
result.)

Choosing, second round: how texts are read (validation split, wally, 10 epochs, every option
not shown at today's default; seed 0 unless shown). 29% of the fortunes are longer than 128
characters (the longest 6,621), so the first 128 leave part of them unread, and the baseline
lower-cases (TfidfVectorizer's default) and reads the whole text:

======================================================================  ==========  ======
TextCNN recipe (options after ``--validation``)                         validation  wrong
======================================================================  ==========  ======
``--crop start --eval-length 128``: lower-cased, first 128 characters   0.9913      25
``--case keep``: case kept, random windows, whole texts                 0.9924      22
(none): lower-cased, random windows of 128, whole texts (the recipe)    0.9924      22
the recipe, ``--seed 1``                                                0.9934      19
``--length 256``: windows of 256                                        0.9927      21
``--widths 1 2 3 4 5 --filters 200``                                    0.9917      24
``--embedding 128``                                                     0.9917      24
``--dropout 0.3``                                                       0.9924      22
``--epochs 20`` (twice the cost)                                        0.9934      19
======================================================================  ==========  ======

Every row lies between 19 and 25 texts wrong, and the recipe's two seeds alone differ by 3:
neither lower-casing, nor random windows with whole texts in evaluation, nor longer windows,
wider or more feature maps, a wider embedding, less dropout or twice the epochs closes the gap
of 10 to 16 texts to the baseline's 9 (20 epochs, the best at 19 wrong, ties the second seed
at twice the cost). The recipe keeps the whole-text reading, which ties the first-128 reading
on validation (22 wrong against 21 for the old recipe, with case, and 25 lower-cased) at the
same training cost, because it is what ``wally predict`` should do with a long text: classify
all of it, as the baseline does. A tweak would have replaced a default only by beating the
recipe's two-seed mean (0.9929) by more than the seeds' spread (0.0010), and none did. The
texts TextCNN gets wrong and the baseline right are short: in one run of the recipe on this
split (``wally`` as above, its predictions kept), the 14 texts only TextCNN got wrong were 15
to 110 characters long, 11 of them under 61 (Portuguese read as Spanish, a German proverb read
as English, quotations and jokes in another language's file), and there was no text the
baseline got wrong that TextCNN got right.

Choosing, third round: short windows (validation split, wally; seed 0 unless shown). The
second round's errors were short texts, and every training window was 128 characters of a
longer text or a short text whole, so the model saw few short pieces of long texts.
``--min-length 16`` draws each window's length uniformly from 16 to 128 before its offset:

======================================================================  ==========  ======
TextCNN recipe (options after ``--validation``)                         validation  wrong
======================================================================  ==========  ======
the second round's recipe (windows of 128, 100 maps, 10 epochs)        0.9924      22
the same, ``--seed 1``                                                  0.9934      19
``--min-length 16 --filters 100 --epochs 10``                           0.9931      20
the same, ``--seed 1``                                                  0.9934      19
``--min-length 16 --filters 100 --epochs 20``                           0.9931      20
``--min-length 16 --filters 300 --epochs 15`` (the recipe)              0.9951      14
the recipe, ``--seed 1``                                                0.9944      16
the recipe with ``--widths 2 3 4 5``                                    0.9934      19
======================================================================  ==========  ======

Random lengths alone, or more epochs alone, stay within the seeds' spread; with three times
the maps and half again the epochs they take 5 and 3 texts off the two seeds (a two-seed mean
of 15 wrong against 20.5), more than the spread, so the recipe became windows of 16 to 128,
300 maps, 15 epochs. It costs about four times the old recipe's training (about 440 s
against 106 s for the 10-epoch 100-map run on validation, one thread on a quiet machine).

Choosing, fourth round (validation split, wally, seed 0, the recipe with one change each; a
scratch copy of :func:`textcnn_accuracy` with the extra switches, 2026-12-03, one thread):

======================================================================  ======
TextCNN recipe                                                          wrong
======================================================================  ======
the recipe (run again: the same 14, bit for bit)                        14
label smoothing 0.1 (``CrossEntropyLoss(label_smoothing=0.1)``)         15
the same, weights averaged over the last 5 epochs                       16
500 maps of each width                                                  19
dropout 0.3                                                             16
batch 32                                                                14
characters replaced by ``<unk>`` with probability 0.1 in training       17
25 epochs                                                               14
======================================================================  ======

None beats the recipe; the baseline makes 9. The recipe's 14 errors are texts of 17 to 117
characters: seven Brazilian-Portuguese taglines (read as Spanish three times, and as English,
Italian, Esperanto, Polish), English read as Polish or Italian, German and Polish read as
Polish and Czech, Spanish read as Portuguese, Italian read as Portuguese.

Choosing, fifth round (validation split, wally, seed 0, the recipe with one change each; a
scratch copy with an optimiser switch, 2026-12-03 evening, one thread, two runs at once):

======================================================================  ======
TextCNN recipe                                                          wrong
======================================================================  ======
AdamW, ``weight_decay=0.01`` (PyTorch's default)                        17
Kim's max-norm: the classifier's rows held to norm 3 after every step   14
dropout 0.7                                                             17
windows of 16 to 64 characters (``--length 64``)                        16
hashed character-bigram embeddings (32,768 rows) added to the characters'  18
the same with hashed trigram embeddings too                            16
======================================================================  ======

Regularising harder (weight decay, more dropout) costs texts, Kim's max-norm ties the recipe,
and shorter windows, aimed at the short texts it misses, cost two. Giving the convolutions
character n-grams at the input, as fastText's subword vectors and the baseline's features do
(each position's vector the sum of its character's, its bigram's and, in the last row, its
trigram's, hashed into 32,768 rows, a scratch subclass of ``TextCNN``), costs two to four. The
baseline makes 9.

Choosing, sixth round (validation split, wally, the recipe with one change; a scratch
subclass's forward, 2026-12-04, one thread each, two runs at once, about 600 s each):

======================================================================  ======
TextCNN recipe                                                          wrong
======================================================================  ======
the recipe, seeds 0 and 1 (the third round's runs)                      14, 16
max- and mean-over-time pooling concatenated (each width's maps pooled  16, 17
both ways, the mean over the real steps only), seeds 0 and 1
======================================================================  ======

Giving the classifier each map's mean over the text as well as its max, the counts a bag of
n-grams sees, costs one or two texts on both seeds (as it added nothing in the first round,
with the older recipe); the baseline makes 9.

Measured (test split, wally; the first five rows read the first ``--length`` characters with
case, in training and test):

============================================================  ========  ===========
TextCNN recipe                                                accuracy  TextCNN time
============================================================  ========  ===========
defaults, 256 characters, Adam 1e-3, 10 epochs                0.9878    2,227 s
defaults, 128 characters, Adam 2e-3 cosine, 8 epochs          0.9886    650 s
200 maps of widths 1-5, 128 characters, Adam 2e-3 cosine, 8   0.9886    1,247 s
128 characters, Adam 2e-3 cosine, 6 epochs                    0.9864    1,444 s
128 characters, Adam 2e-3 cosine, 10 epochs (the old recipe)  0.9900    559 s
lower-cased, random windows of 128, whole texts, 10 epochs    0.9900    210 s
the recipe: windows of 16 to 128, 300 maps, 15 epochs         0.9919    429 s
============================================================  ========  ===========

(The 6-epoch row is ``python examples/text_language_id.py`` with the recipe's first
version, which runs the same code in the same order: its first epoch gives the same loss and
accuracy as this script's.)

The recipe's test accuracy per epoch (``python -m benchmarks.text_targets``, run once, after
the third round chose the recipe, on a quiet 2-core machine): 0.9752, 0.9847, 0.9878,
0.9891, 0.9897, 0.9916, 0.9908, 0.9911, 0.9897, 0.9883, 0.9919, 0.9911, 0.9919, 0.9914,
0.9919 (the second round's recipe, 10
epochs: 0.9724, 0.9819, 0.9861, 0.9858, 0.9883, 0.9891, 0.9891, 0.9897, 0.9900, 0.9900).

So the target is NOT met: with the recipe TextCNN stays 0.28 points (10 of 3,592 texts: 29
wrong against the baseline's 19) behind the character n-gram baseline on test, where the
second round's recipe stayed 0.47 points (17 texts) behind; on validation the gap is 5 and 7
texts over two seeds (14 and 16 wrong against 9). Times: the second round's validation runs
took 114 to 528 s on a shared 2-core machine, which other work slowed by up to five times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def baseline_accuracy(train_texts: list[str], train_labels: Any, test_texts: list[str],
                      test_labels: Any) -> float:
    """The TF-IDF character n-gram + logistic-regression accuracy on the test texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                                 min_df=2)
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=10, max_iter=1000).fit(features, train_labels)
    return float((classifier.predict(vectorizer.transform(test_texts)) == test_labels).mean())


def textcnn_accuracy(train_texts: list[str], train_labels: Any, test_texts: list[str],
                     test_labels: Any, num_classes: int, *, epochs: int, length: int = 128,
                     batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                     model_kwargs: dict[str, Any] | None = None, cosine: bool = True,
                     reading: dict[str, Any] | None = None, log: Any = None) -> float:
    """TextCNN's test accuracy after ``epochs`` epochs of Adam on the training texts (its
    learning rate annealed to 0 over them with ``cosine``), the texts read as ``wally
    train``'s recipe reads them (:func:`wally.cli._text.text_sets`; ``reading`` overrides its
    ``lower``, ``crop``, ``min_length`` and ``eval_length``)."""
    import wally
    from wally import optim
    from wally.cli._text import RECIPE, eval_loader, text_sets
    from wally.data import DataLoader
    from wally.train import evaluate, fit

    wally.manual_seed(seed)
    vocab, train_set, test_set, _ = text_sets(train_texts, train_labels, test_texts,
                                              test_labels, length=length,
                                              recipe={**RECIPE, **(reading or {})})
    model = wally.models.textcnn(vocab_size=len(vocab), num_classes=num_classes,
                                 max_length=length, **(model_kwargs or {}))
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=seed)
    test_loader = eval_loader(test_set, 256)
    callbacks = [log] if log is not None else []
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if cosine else None
    fit(model, train_loader, test_loader, optimizer=optimizer, scheduler=scheduler,
        epochs=epochs, callbacks=callbacks, progress=False)
    accuracy = evaluate(model, test_loader, progress=False)["accuracy"]
    return float(accuracy)


def eval_length(text: str) -> int | None:
    """argparse type for ``--eval-length``: ``whole`` (None) or a positive integer."""
    if text == "whole":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'whole' or a positive integer, got {text}")
    return value


def validation_split(texts: list[str], labels: Any) -> tuple[list[str], Any, list[str], Any]:
    """The training texts cut in two for choosing a recipe: every fifth text (index 0 modulo
    5; the split comes in hash order, so that is a fair sample) is held out for validation."""
    keep = [i % 5 != 0 for i in range(len(texts))]
    held = [not k for k in keep]
    return ([t for t, k in zip(texts, keep) if k], labels[keep],
            [t for t, h in zip(texts, held) if h], labels[held])


def main(argv: list[str] | None = None) -> int:
    from wally.cli._text import RECIPE
    from wally.data.text import Fortunes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="the fortunes folder")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--length", type=int, default=RECIPE["max_length"])
    parser.add_argument("--lr", type=float, default=RECIPE["lr"])
    parser.add_argument("--filters", type=int, default=RECIPE["num_filters"],
                        help="feature maps per width")
    parser.add_argument("--widths", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--embedding", type=int, default=64, help="embedding_dim")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0, help="weights, shuffle, crops, dropout")
    parser.add_argument("--case", choices=["lower", "keep"],
                        default="lower" if RECIPE["lower"] else "keep",
                        help="lower-case the texts (the vocabulary's lower) or keep case")
    parser.add_argument("--crop", choices=["start", "random"], default=RECIPE["crop"],
                        help="which --length characters of a longer training text are read")
    parser.add_argument("--min-length", type=int, default=RECIPE["min_length"],
                        help="with --crop random, the shortest window (0: every window "
                             "--length long)")
    parser.add_argument("--eval-length", type=eval_length, default=RECIPE["eval_length"],
                        metavar="N", help="characters read of a test text: N or whole")
    parser.add_argument("--constant-lr", dest="cosine", action="store_false",
                        help="keep the learning rate (default: annealed to 0 along a cosine)")
    parser.add_argument("--validation", action="store_true",
                        help="choose, don't measure: train on 4/5 of the training texts and "
                             "score both models on the other fifth (the test split unread)")
    parser.add_argument("--limit", type=int, default=None,
                        help="the first N training and test texts only")
    parser.add_argument("--json", default=None, metavar="FILE")
    args = parser.parse_args(argv)

    train = Fortunes(args.root, train=True)
    train_texts, train_labels = train.texts[:args.limit], train.targets[:args.limit]
    if args.validation:
        train_texts, train_labels, test_texts, test_labels = validation_split(
            train_texts, train_labels)
        split = "validation"
    else:
        test = Fortunes(args.root, train=False)
        test_texts, test_labels = test.texts[:args.limit], test.targets[:args.limit]
        split = "test"
    counts = [int((test_labels == c).sum()) for c in range(len(train.classes))]
    majority = max(counts) / len(test_labels)
    print(f"Fortunes: {len(train_texts):,} training and {len(test_texts):,} {split} texts, "
          f"{len(train.classes)} languages; majority class {majority:.4f}", flush=True)

    started = time.perf_counter()
    baseline = baseline_accuracy(train_texts, train_labels, test_texts, test_labels)
    print(f"TF-IDF char 1-4-grams + logistic regression: {split} accuracy {baseline:.4f} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)

    def log(record: dict[str, Any]) -> None:
        print(f"  textcnn epoch {record['epoch']}: loss {record['train_loss']:.4f}  {split} acc "
              f"{record['val_accuracy']:.4f}  {record['examples_per_s']:,.0f} examples/s",
              flush=True)

    started = time.perf_counter()
    cnn = textcnn_accuracy(train_texts, train_labels, test_texts, test_labels,
                           len(train.classes), epochs=args.epochs, length=args.length,
                           lr=args.lr, cosine=args.cosine, log=log,
                           reading={"lower": args.case == "lower", "crop": args.crop,
                                    "eval_length": args.eval_length,
                                    "min_length": args.min_length or None},
                           seed=args.seed,
                           model_kwargs={"num_filters": args.filters,
                                         "kernel_sizes": args.widths,
                                         "embedding_dim": args.embedding,
                                         "dropout": args.dropout})
    print(f"TextCNN: {split} accuracy {cnn:.4f} ({time.perf_counter() - started:.0f} s)")
    command = "python -m benchmarks.text_targets " + " ".join(argv if argv is not None
                                                               else sys.argv[1:])
    print(f"{split} accuracy, side by side: TextCNN {cnn:.4f}  TF-IDF + logistic regression "
          f"{baseline:.4f}  ({command.strip()})")
    print(f"target (TextCNN >= baseline): {'met' if cnn >= baseline else 'NOT met'} "
          f"({cnn:.4f} vs {baseline:.4f}, {cnn - baseline:+.4f})")
    if args.json:
        from wally.io import atomic_write

        result = {"split": split, "baseline": baseline, "textcnn": cnn, "majority": majority,
                  "train": len(train_texts), "test": len(test_texts), "epochs": args.epochs,
                  "length": args.length, "lr": args.lr, "cosine": args.cosine,
                  "filters": args.filters, "widths": args.widths, "case": args.case,
                  "crop": args.crop, "min_length": args.min_length,
                  "eval_length": args.eval_length,
                  "embedding": args.embedding, "dropout": args.dropout, "seed": args.seed}
        atomic_write(args.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
