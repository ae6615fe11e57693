"""Copy the PyTorch code cells of the d2l book's CNN chapters into ``tests/d2l/chapters/``.

Run once against a checkout of https://github.com/d2l-ai/d2l-en (the snapshot shipped here is
release 1.0.3, commit 23d7a5aecceee57d1292c56e90cce307f183bb0a)::

    python tests/d2l/extract.py PATH/TO/d2l-en

A cell belongs to PyTorch when its ``%%tab`` line names ``pytorch`` or ``all``; the line itself
and notebook magics (``%matplotlib inline``) are dropped, everything else is kept verbatim. The
book's code is under the MIT-0 licence (``LICENSE-SAMPLECODE`` beside this file).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHAPTERS = [
    "chapter_convolutional-neural-networks/conv-layer",
    "chapter_convolutional-neural-networks/padding-and-strides",
    "chapter_convolutional-neural-networks/channels",
    "chapter_convolutional-neural-networks/pooling",
    "chapter_convolutional-neural-networks/lenet",
    "chapter_convolutional-modern/alexnet",
    "chapter_convolutional-modern/vgg",
    "chapter_convolutional-modern/nin",
    "chapter_convolutional-modern/googlenet",
    "chapter_convolutional-modern/batch-norm",
    "chapter_convolutional-modern/resnet",
    "chapter_convolutional-modern/densenet",
    "chapter_convolutional-modern/cnn-design",
]
CELL = re.compile(r"^```\{\.python \.input[^}]*\}\n(.*?)^```", re.S | re.M)
MARK = "# %% cell {}\n"


def pytorch_cells(markdown: str) -> list[str]:
    cells = []
    for body in CELL.findall(markdown):
        first, _, rest = body.partition("\n")
        if not first.startswith("%%tab"):
            continue
        tabs = {t.strip() for t in first[len("%%tab"):].split(",")}
        if tabs & {"pytorch", "all"}:
            lines = [line for line in rest.splitlines() if not line.startswith("%")]
            cells.append("\n".join(lines).strip() + "\n")
    return cells


def main(book: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for chapter in CHAPTERS:
        cells = pytorch_cells((book / f"{chapter}.md").read_text(encoding="utf-8"))
        name = chapter.split("/")[1]
        header = (f"# d2l-en 1.0.3, {chapter}.md: its {len(cells)} PyTorch code cells, "
                  "verbatim (MIT-0, see ../LICENSE-SAMPLECODE).\n")
        text = header + "".join(MARK.format(i) + c for i, c in enumerate(cells))
        (out / f"{name}.py").write_text(text, encoding="utf-8")
        print(f"{name}: {len(cells)} cells")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent / "chapters")
