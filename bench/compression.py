"""What each compression technique buys on the medical abstracts, measured in one run on this CPU.

Rows: the dense fine-tuned MiniLM; magnitude-pruned copies at 0.1/0.2/0.3/0.5 (one-shot global
L1 on the fine-tuned weights, then a recovery fine-tune with the masks fixed); the INT8 dynamic
export of the dense model; a half-depth student (every other layer, initialised from the dense
model) distilled from it. Columns: test accuracy, macro-F1, parameters, non-zero parameters,
size on disk (and gzip'd: where pruning's zeros pay off), CPU latency per sample (batch 1, fixed
threads, all models interleaved, median of repeats) and training seconds.

Training runs in this one process with the recipe's Ray-free step (`pipeline.loop`) and the same
technique modules as `spotfit train`. Writes bench/results/compression.json and a markdown table.

    python bench/compression.py            # all 1,859 training rows, 128 tokens, 3 epochs
    python bench/compression.py --quick    # 600 rows, 64 tokens, 2 epochs: minutes on 2 cores
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline import data, distillation, footprint, loop, modeling, pruning, quantization  # noqa: E402
from pipeline.config import DataConfig, ModelConfig  # noqa: E402
from pipeline.schedule import inverse_time_schedule  # noqa: E402

RATIOS = (0.1, 0.2, 0.3, 0.5)
NO_AUTOCAST = contextlib.nullcontext  # fp32 throughout: the rows compare models, not precisions


def load_data(args):
    import datasets

    datasets.disable_progress_bars()
    files = {s: str(ROOT / "data" / "medical_abstracts" / f"{s}.csv") for s in ("train", "validation", "test")}
    splits, labels = data.load_splits(DataConfig(**files, max_train_samples=args.train_rows))
    tokenizer = modeling.load_tokenizer(ModelConfig(name="minilm"))
    tokenized = {s: data.tokenize(d, tokenizer, args.max_length) for s, d in splits.items()}
    return tokenized, labels, data.collator(tokenizer)


def fine_tune(model, train, collate, args, epochs: int, teacher=None) -> float:
    """AdamW with warm-up and inverse-time decay, as configs/medical.yaml; returns seconds spent.

    With a teacher: alpha * T^2 * KL + (1 - alpha) * CE (alpha 0.5, T 2). Pruning masks in place
    stay fixed: the masked weights get no gradient through weight_orig * mask.
    """
    torch.manual_seed(args.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    schedule = inverse_time_schedule(optimizer, 0.01, 20)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            soft = distillation.teacher_logits(teacher, batch, NO_AUTOCAST) if teacher is not None else None
            loss, logits = loop.loss_step(model, batch, NO_AUTOCAST)
            if soft is not None:
                loss = distillation.combine(loss, logits, soft, 0.5, 2.0)
            loop.optimizer_step(loss, params, optimizer, scaler, schedule, 1.0)
    return time.perf_counter() - t0


def disk_mb(model, folder: Path, int8: bool) -> tuple[float, float]:
    """(MB on disk, MB gzip'd at level 1): zeros compress, so pruning shows in the second."""
    if int8:  # as `spotfit export` writes it: packed int8 state dict
        folder.mkdir(parents=True)
        torch.save(model.state_dict(), folder / quantization.WEIGHTS_FILE)
    else:
        model.save_pretrained(folder)
    files = [f for f in folder.iterdir() if f.suffix in footprint.WEIGHT_SUFFIXES]
    zipped = sum(len(gzip.compress(f.read_bytes(), compresslevel=1)) for f in files)
    return footprint.weights_mb(folder), zipped / 1e6


def train_models(args, tokenized, labels, collate) -> tuple[dict, dict]:
    """The seven models of the table and the training seconds each took (0 for the INT8 export)."""
    say = lambda m: print(f"[bench] {m}", flush=True)  # noqa: E731
    torch.manual_seed(args.seed)  # the new classifier head's init: without it the dense row moved 2 points run to run
    dense = modeling.load_model(ModelConfig(name="minilm"), labels, 0)
    seconds = {"dense": fine_tune(dense, tokenized["train"], collate, args, args.epochs)}
    say(f"dense trained in {seconds['dense']:.0f}s")
    models = {"dense": dense.eval()}
    for ratio in RATIOS:
        pruned = copy.deepcopy(dense)
        pruning.prune_to(pruned, ratio)
        seconds[f"pruned {ratio}"] = fine_tune(pruned, tokenized["train"], collate, args, args.recovery_epochs)
        pruning.remove_masks(pruned)
        models[f"pruned {ratio}"] = pruned.eval()
        say(f"pruned {ratio}: recovered in {seconds[f'pruned {ratio}']:.0f}s, sparsity {pruning.sparsity(pruned):.3f}")
    models["int8"], seconds["int8"] = quantization.quantize_model(dense), 0.0
    student = distillation.half_student(dense)
    seconds["student"] = fine_tune(student, tokenized["train"], collate, args, args.epochs, teacher=dense.eval())
    models["student"] = student.eval()
    say(f"student distilled in {seconds['student']:.0f}s")
    return models, seconds


def build_rows(args, tmp: Path) -> tuple[dict, dict]:
    tokenized, labels, collate = load_data(args)
    models, seconds = train_models(args, tokenized, labels, collate)
    samples = footprint.single_samples(tokenized["test"], collate, args.latency_samples)
    latency = footprint.latency_ms(models, samples, threads=args.threads, repeats=args.repeats)
    rows = {}
    for name, model in models.items():
        counted = models["dense"] if name == "int8" else model  # packed int8 weights: same count as dense
        params, nonzero = footprint.parameter_counts(counted)
        mb, gz = disk_mb(model, tmp / name.replace(" ", "_"), int8=name == "int8")
        quality = footprint.evaluate(model, tokenized["test"], collate, len(labels.names))
        rows[name] = {
            "test_accuracy": quality["accuracy"], "test_macro_f1": quality["macro_f1"],
            "parameters": params, "nonzero_parameters": nonzero, "linear_sparsity": pruning.sparsity(counted),
            "size_mb": mb, "size_mb_gzip": gz, "latency_ms": latency[name], "train_seconds": seconds[name],
        }
    return rows, {"train_rows": len(tokenized["train"]), "test_rows": len(tokenized["test"])}


def targets(rows: dict) -> dict:
    """The issue's targets, each with the measured figure it was judged on."""
    d, q, p, s = rows["dense"], rows["int8"], rows["pruned 0.3"], rows["student"]
    return {
        "pruned_0.3_within_1_point": {"drop_points": 100 * (d["test_accuracy"] - p["test_accuracy"]), "met": d["test_accuracy"] - p["test_accuracy"] <= 0.01},
        "int8_1.5x_faster": {"speedup": d["latency_ms"] / q["latency_ms"], "met": d["latency_ms"] / q["latency_ms"] >= 1.5},
        "int8_0.6x_size": {"size_ratio": q["size_mb"] / d["size_mb"], "met": q["size_mb"] / d["size_mb"] <= 0.6},
        "int8_within_1_point": {"drop_points": 100 * (d["test_accuracy"] - q["test_accuracy"]), "met": d["test_accuracy"] - q["test_accuracy"] <= 0.01},
        "student_1.8x_faster": {"speedup": d["latency_ms"] / s["latency_ms"], "met": d["latency_ms"] / s["latency_ms"] >= 1.8},
        "student_within_3_points": {"drop_points": 100 * (d["test_accuracy"] - s["test_accuracy"]), "met": d["test_accuracy"] - s["test_accuracy"] <= 0.03},
    }


def markdown(rows: dict, dense_latency: float) -> str:
    head = "| model | test acc | macro-F1 | params | non-zero | disk MB | gzip MB | ms/sample | speed-up | train s |"
    lines = [head, "|" + "---|" * 10]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['test_accuracy']:.4f} | {r['test_macro_f1']:.4f} | {r['parameters'] / 1e6:.2f}M | "
            f"{r['nonzero_parameters'] / 1e6:.2f}M | {r['size_mb']:.1f} | {r['size_mb_gzip']:.1f} | {r['latency_ms']:.1f} | "
            f"{dense_latency / r['latency_ms']:.2f}x | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (platform.processor() is empty on Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 rows, 64 tokens, 2 epochs, 1 recovery epoch, fewer timings")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the latency timing (default 1)")
    parser.add_argument("--train-threads", type=int, default=2, help="torch threads for training and evaluation (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "compression.json"))
    args = parser.parse_args()
    full = dict(train_rows=0, max_length=128, epochs=3, recovery_epochs=1, latency_samples=32, repeats=5)
    quick = dict(train_rows=600, max_length=64, epochs=2, recovery_epochs=1, latency_samples=16, repeats=3)
    for key, value in (quick if args.quick else full).items():
        setattr(args, key, value)
    args.lr, args.batch_size = 1e-4, 16
    torch.set_num_threads(args.train_threads)  # latency_ms sets args.threads for the timing only

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, sizes = build_rows(args, Path(tmp))
    table = markdown(rows, rows["dense"]["latency_ms"])
    machine = f"{platform.machine()}, {cpu_name()}, {os.cpu_count()} cores (shared), torch {torch.__version__}, {args.threads} thread(s)"
    result = {
        "rows": rows, "targets": targets(rows), "machine": machine, "quick": args.quick,
        "settings": {k: getattr(args, k) for k in ("train_rows", "max_length", "epochs", "recovery_epochs", "latency_samples", "repeats", "threads", "train_threads", "lr", "batch_size", "seed")} | sizes,
        "wall_seconds": time.perf_counter() - started, "markdown": table,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    for name, t in result["targets"].items():
        print(f"{name}: {'met' if t['met'] else 'NOT met'} ({', '.join(f'{k} {v:.2f}' for k, v in t.items() if k != 'met')})")
    print(f"{machine}; {result['wall_seconds']:.0f}s; {out}")


if __name__ == "__main__":
    main()
