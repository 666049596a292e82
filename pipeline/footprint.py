"""What a trained model costs to keep and to run: size on disk, (non-zero) parameters, CPU latency
per sample, and test accuracy without Ray. Shared by `spotfit export` and the benchmark."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from pipeline import metrics

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def weights_mb(folder: Path) -> float:
    """Megabytes (1e6) of weight files in a saved model folder; tokenizer and config excluded."""
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.suffix in WEIGHT_SUFFIXES) / 1e6


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters); zeros left by pruning count as parameters, not non-zeros."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(int(p.count_nonzero()) for p in params)


def evaluate(model: nn.Module, ds, collate, num_labels: int, batch_size: int = 64) -> dict:
    """Test accuracy and macro-F1 on one process, in fp32 (int8 modules run on CPU only)."""
    cm = torch.zeros(num_labels, num_labels, dtype=torch.long)
    model.eval()
    with torch.inference_mode():
        for batch in DataLoader(ds, batch_size=batch_size, collate_fn=collate):
            labels = batch.pop("labels")
            cm += metrics.confusion_matrix(model(**batch).logits.argmax(-1), labels, num_labels)
    return {"accuracy": metrics.accuracy(cm), "macro_f1": metrics.macro_f1(cm)}


def latency_ms(models: dict[str, nn.Module], samples: list[dict], threads: int = 1, repeats: int = 5) -> dict[str, float]:
    """Median over `repeats` of the mean ms per sample, one sample a call (batch 1, as served).

    Models take turns inside each repeat (interleaved A/B), so load from other processes on a
    shared machine hits all of them alike; the median drops the repeats a neighbour spoiled.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # latency depends on it more than on anything else
    times: dict[str, list[float]] = {name: [] for name in models}
    try:
        with torch.inference_mode():
            for model in models.values():
                model.eval()(**samples[0])  # warm-up: first call allocates and packs
            for _ in range(repeats):
                for name, model in models.items():
                    t0 = time.perf_counter()
                    for sample in samples:
                        model(**sample)
                    times[name].append((time.perf_counter() - t0) * 1000 / len(samples))
    finally:
        torch.set_num_threads(before)
    return {name: statistics.median(t) for name, t in times.items()}


def single_samples(ds, collate, n: int) -> list[dict]:
    """The first `n` examples as batch-1 model inputs, unpadded (each at its own length)."""
    out = []
    for i in range(min(n, len(ds))):
        batch = collate([ds[i]])
        batch.pop("labels", None)
        out.append(batch)
    return out
