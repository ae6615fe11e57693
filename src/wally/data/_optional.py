"""Lazy imports of the optional dependencies (Pillow, scikit-learn).

NumPy is wally's only required dependency; the few features that need more import it on first
use and, where it is missing, say what to install.
"""

from __future__ import annotations

import importlib
from typing import Any

EXTRA = "wally-cnn[data]"

_PACKAGES = {"PIL": "pillow", "sklearn": "scikit-learn"}


def require(module: str, feature: str) -> Any:
    """Import ``module`` or raise an ImportError naming ``feature`` and what to pip install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        package = _PACKAGES.get(top, top)
        raise ImportError(
            f"{feature} needs {package}, which is not installed: "
            f"pip install {package}  (or pip install '{EXTRA}')"
        ) from error

