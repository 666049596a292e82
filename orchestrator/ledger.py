"""Append-only ledger of cost events, one JSON object a line, so spend survives a tracker restart.

Replaying the ledger through a fresh `CostBook` rebuilds every total: the ledger holds the
events, not the totals, so there is one integration code path, not two that could disagree.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

DEFAULT_LEDGER = Path(os.environ.get("SPOTFIT_LEDGER", Path.home() / ".spotfit" / "cost_ledger.jsonl"))


class Ledger:
    def __init__(self, path: str | Path = DEFAULT_LEDGER):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, events: list[dict]) -> None:
        if not events:
            return
        # One write per poll, flushed: a crash loses at most the poll being written. A line a
        # crash cut short gets its newline first, so it does not swallow the next record.
        with self.path.open("a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in events).encode())
            f.flush()

    def read(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with self.path.open() as f:
            for line in f:
                try:
                    yield json.loads(line)
                except ValueError:
                    # A line cut short by a crash mid-write; everything before it is intact.
                    continue
