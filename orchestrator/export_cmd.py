"""`spotfit export --run DIR --quantize int8`: quantize a finished run's model for CPU serving.

Writes `model_int8/` beside `model/` and `export.json` with size, latency and test accuracy of
both, measured here on this machine's CPU at a fixed thread count.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from pipeline import data, footprint, quantization
from pipeline.config import ConfigError, TrainConfig, build, read_yaml

INT8_DIR = "model_int8"
EXPORT_FILE = "export.json"


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="quantize a finished run's model (INT8) and measure it", description="Quantize a finished run's model and measure size, CPU latency and test accuracy.")
    p.add_argument("--run", dest="run_dir", required=True, help="run folder written by spotfit train (holds model/ and config.yaml)")
    p.add_argument("--quantize", choices=["int8"], default="int8", help="int8: dynamic quantization of the Linear layers (CPU inference)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the latency measurement (default 1)")
    p.add_argument("--latency-samples", type=int, default=32, help="test texts timed one at a time (default 32)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds; the median is kept (default 5)")
    p.set_defaults(run=run)


def load_run(folder: Path):
    """The run's model, tokenizer, labels and config; a folder that is not a finished run is a user error."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = folder / "model"
    if not (model_dir / "config.json").exists() or not (folder / "config.yaml").exists():
        raise ConfigError(f"--run: {folder} is not a finished spotfit run (needs model/config.json and config.yaml)")
    cfg = build(TrainConfig, read_yaml(folder / "config.yaml"))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    return model, AutoTokenizer.from_pretrained(model_dir), cfg


def measure(folder: Path, args) -> dict:
    from transformers import DataCollatorWithPadding

    model, tokenizer, cfg = load_run(folder)
    qmodel = quantization.quantize_model(model)
    quantization.save_quantized(qmodel, folder / "model", folder / INT8_DIR)
    splits, labels = data.load_splits(cfg.data)
    test = data.tokenize(splits["test"], tokenizer, cfg.model.max_length)
    pad = DataCollatorWithPadding(tokenizer)
    collate = lambda features: dict(pad(features))  # noqa: E731
    n = len(labels.names)
    fp32, int8 = footprint.evaluate(model, test, collate, n), footprint.evaluate(qmodel, test, collate, n)
    samples = footprint.single_samples(test, collate, args.latency_samples)
    latency = footprint.latency_ms({"fp32": model, "int8": qmodel}, samples, args.threads, args.repeats)
    return {
        "quantize": args.quantize,
        "scheme": quantization.SCHEME,
        "size_mb_fp32": footprint.weights_mb(folder / "model"),
        "size_mb_int8": footprint.weights_mb(folder / INT8_DIR),
        "latency_ms_fp32": latency["fp32"],
        "latency_ms_int8": latency["int8"],
        "accuracy_fp32": fp32["accuracy"],
        "accuracy_int8": int8["accuracy"],
        "macro_f1_fp32": fp32["macro_f1"],
        "macro_f1_int8": int8["macro_f1"],
        "test_samples": len(test),
        "latency_samples": len(samples),
        "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".replace("  ", " "),
    }


def run(args) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = Path(args.run_dir)
    if args.threads < 1 or args.latency_samples < 1 or args.repeats < 1:
        raise ConfigError("--threads, --latency-samples and --repeats must be >= 1")
    result = measure(folder, args)
    (folder / EXPORT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    r = result
    print(f"{'':8} {'size MB':>9} {'ms/sample':>10} {'accuracy':>9}")
    for kind in ("fp32", "int8"):
        print(f"{kind:8} {r[f'size_mb_{kind}']:9.2f} {r[f'latency_ms_{kind}']:10.2f} {r[f'accuracy_{kind}']:9.4f}")
    print(f"int8/fp32: size {r['size_mb_int8'] / r['size_mb_fp32']:.2f}x, speed-up {r['latency_ms_fp32'] / r['latency_ms_int8']:.2f}x "
          f"({r['threads']} thread(s), batch 1, median of {args.repeats}); {folder / INT8_DIR}")
    return 0
