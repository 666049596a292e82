"""Training state to and from a folder: model, optimizer, LR schedule, scaler, step, RNG, labels.

Rank 0 writes the shared state; every rank writes its own RNG state, so a resumed run draws the
same dropout masks it would have drawn. Ray Train uploads the folder to `storage_path`.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

STATE_FILE = "train_state.pt"
LABELS_FILE = "labels.json"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save(folder: Path, *, rank: int, state: dict | None, labels: dict | None = None) -> None:
    """`state` (rank 0 only): state dicts and counters; every rank saves its RNG."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), folder / f"rng_rank{rank}.pt")
    if state is not None:
        torch.save(state, folder / STATE_FILE)
    if labels is not None:
        (folder / LABELS_FILE).write_text(json.dumps(labels, indent=2))


def load(folder: Path, *, rank: int) -> dict:
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
    rng_file = folder / f"rng_rank{rank}.pt"
    if rng_file.exists():  # absent when the worker count changed: keep the fresh seed
        set_rng_state(torch.load(rng_file, weights_only=False))
    return state
