"""torchvision's printed form of a dataset's transforms, shared by every dataset here."""

from __future__ import annotations

from typing import Any


def standard_transform_repr(transform: Any, target_transform: Any) -> str:
    """torchvision's ``StandardTransform`` repr (its later lines are not indented)."""
    body = ["StandardTransform"]
    for head, value in (("Transform: ", transform), ("Target transform: ", target_transform)):
        if value is not None:
            lines = repr(value).splitlines()
            body += [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]
    return "\n".join(body)
