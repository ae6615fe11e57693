"""Shared helpers for the sequence tests: the real UCR files shipped inside aeon (found
without importing aeon) and small ``.ts`` files the tests write."""

from __future__ import annotations

from pathlib import Path

import pytest

from wally.data.ucr import aeon_data_folder

AEON_HINT = "aeon's datasets/data folder is absent (pip install aeon==1.6.0 --no-deps)"


def aeon_root(*names: str) -> Path:
    """aeon's ``datasets/data`` folder, holding ``<name>/<name>_TRAIN.ts`` and ``_TEST.ts``
    for every name; the calling test is skipped, with the reason, when it does not."""
    folder = aeon_data_folder()
    if folder is None:
        pytest.skip(AEON_HINT)
    for name in names:
        for split in ("TRAIN", "TEST"):
            if not (folder / name / f"{name}_{split}.ts").is_file():
                pytest.skip(f"{folder} has no {name}/{name}_{split}.ts ({AEON_HINT})")
    return folder


HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 4
@classLabel true up down
@data
"""
ROWS = "1,2,3,4:up\n4,3,2,1:down\n1.5,2.5,3.5,4.5:up\n"

MULTI = """@problemName Multi
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b c
@data
1,2,3:4,5,6:b
7,8:9,10:a
1,2,3,4,5:0,0,0,0,0:c
"""


def write_ucr(root: Path, name: str = "Toy", train: str = HEADER + ROWS,
              test: str | None = None) -> Path:
    """``<root>/UCR/<name>/<name>_TRAIN.ts`` and ``_TEST.ts`` (the same text unless given);
    returns ``root``."""
    folder = root / "UCR" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_TRAIN.ts").write_text(train.replace("Toy", name))
    (folder / f"{name}_TEST.ts").write_text((train if test is None else test).replace("Toy",
                                                                                      name))
    return root
