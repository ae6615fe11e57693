"""The errors the dataset classes raise, so that callers can catch them by kind."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError, RuntimeError):
    """A dataset's files are missing and could not be downloaded (or ``download=False``).

    Both a ``FileNotFoundError`` (an ``OSError``) and a ``RuntimeError`` (what torchvision
    raises), so either ``except`` clause catches it. The message names every URL, the exact file
    names and the exact folder to put them in by hand.
    """


class ChecksumError(RuntimeError):
    """A downloaded file's checksum differs from the published one."""


class DatasetFormatError(ValueError):
    """A dataset file is truncated, corrupt or not in the expected format (the message names
    the file and what is wrong with it)."""
