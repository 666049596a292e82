"""What a finished run leaves behind: the run folder and the short table printed at the end."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

# metrics.json keys shown in the closing table, with their formats
TABLE_ROWS = [
    ("accuracy_before", "test accuracy before", "{:.4f}"),
    ("test_accuracy", "test accuracy", "{:.4f}"),
    ("test_macro_f1", "test macro-F1", "{:.4f}"),
    ("train_seconds", "train seconds", "{:.1f}"),
    ("wall_seconds", "wall seconds", "{:.1f}"),
    ("samples_per_second", "samples/s", "{:.1f}"),
    ("precision", "precision", "{}"),
    ("grad_compression", "grad compression", "{}"),
    ("comm_bytes_per_step", "all-reduce MB/step", "mb"),
    ("num_workers", "workers", "{}"),
    ("cost_usd", "cost (USD)", "{:.4f}"),
    ("stopped", "finished", "{}"),
]


def _cell(value, fmt: str) -> str:
    if fmt == "mb":
        return f"{value / 1e6:.2f}"
    return fmt.format(value)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * (vwidth + 2) + "+"
    body = [f"| {k:<{width}} | {v:>{vwidth}} |" for k, v in rows]
    return "\n".join([line, *body, line])


def results_table(m: dict) -> str:
    return table([(label, _cell(m[key], fmt)) for key, label, fmt in TABLE_ROWS if key in m])


def write_run_folder(folder: Path, metrics: dict, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
