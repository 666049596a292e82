"""Node time to the same accuracy: the user's alternative (Hugging Face Trainer with its defaults:
3 epochs, batch 8, lr 5e-5, fp32) against `spotfit train --config configs/medical.yaml`, side by
side on this machine, on the same MiniLM, data and max length. Writes
bench/results/vs_hf_trainer.json and prints a table.

Node time is the wall clock of the whole command (start-up, evaluation and saving included) on
the one node both use; for the Trainer it is measured around `trainer.train()` plus evaluation,
with model loading, so it is if anything flattering to the Trainer (no Python start-up counted).

    pip install -e ".[bench]"; python bench/vs_hf_trainer.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_LENGTH = 128


def run_hf_trainer(workdir: str) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from pipeline import data, modeling
    from pipeline.config import DataConfig

    started = time.perf_counter()
    torch.manual_seed(0)
    splits, labels = data.load_splits(DataConfig(**{s: str(ROOT / "data" / "medical_abstracts" / f"{s}.csv") for s in ("train", "validation", "test")}))
    path = str(modeling.bundled_minilm())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoded = {s: ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True) for s, ds in splits.items()}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels.names), **labels.to_json())
    args = TrainingArguments(output_dir=workdir, report_to=[], save_strategy="no", use_cpu=True, seed=0)  # defaults otherwise
    trainer = Trainer(model=model, args=args, train_dataset=encoded["train"], processing_class=tokenizer)
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    preds = trainer.predict(encoded["test"])
    accuracy = float((np.argmax(preds.predictions, -1) == preds.label_ids).mean())
    return {
        "test_accuracy": accuracy,
        "train_seconds": train_seconds,
        "node_seconds": time.perf_counter() - started,
        "epochs": args.num_train_epochs,
        "batch_size": args.per_device_train_batch_size,
        "lr": args.learning_rate,
    }


def run_spotfit(outdir: str) -> dict:
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "orchestrator.cli", "train", "--config", str(ROOT / "configs" / "medical.yaml"),
           "--set", f"output_dir={outdir}/run", "--set", f"storage_path={outdir}/ray"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((Path(outdir) / "run" / "metrics.json").read_text())
    return {
        "test_accuracy": metrics["test_accuracy"],
        "train_seconds": metrics["train_seconds"],
        "node_seconds": time.perf_counter() - started,
        "precision": metrics["precision"],
        "num_workers": metrics["num_workers"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vs_hf_trainer.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["spotfit"] = run_spotfit(tmp)
        print(f"spotfit: {rows['spotfit']}", flush=True)
        rows["hf_trainer"] = run_hf_trainer(tmp)
        print(f"hf_trainer: {rows['hf_trainer']}", flush=True)
    ratio = rows["spotfit"]["node_seconds"] / rows["hf_trainer"]["node_seconds"]
    result = {
        "benchmark": "vs_hf_trainer",
        "machine": {"cores": os.cpu_count()},
        "max_length": MAX_LENGTH,
        **rows,
        "node_time_ratio": ratio,
        "accuracy_delta": rows["spotfit"]["test_accuracy"] - rows["hf_trainer"]["test_accuracy"],
        "target": "node_time_ratio <= 0.5 at accuracy_delta >= -0.005",
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("\n| | test accuracy | train s | node s |\n|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['test_accuracy']:.3f} | {r['train_seconds']:.0f} | {r['node_seconds']:.0f} |")
    print(f"\nspotfit node time = {ratio:.2f} x the Trainer's -> {args.out}")


if __name__ == "__main__":
    main()
