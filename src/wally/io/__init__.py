"""Saving and loading: safetensors checkpoints (never pickle) and atomic file writes."""

from wally.io.atomic import append_line, atomic_write
from wally.io.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    loader_rng_state,
    save_checkpoint,
    set_loader_rng_state,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "append_line",
    "atomic_write",
    "load_checkpoint",
    "loader_rng_state",
    "save_checkpoint",
    "set_loader_rng_state",
]
