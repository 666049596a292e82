"""Typed run configuration: YAML in, frozen dataclasses out, every value checked where it is built.

One dataclass per concern. A wrong key, type or range raises ConfigError naming the key and what
is allowed; the CLI prints that one line and exits with status 2 before anything is written.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """The user's configuration is wrong. The message names the key and what is allowed."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    name: str = "minilm"
    """'minilm' (the bundled all-MiniLM-L6-v2), 'tiny' (a 2-layer random BERT for smoke runs),
    a local save_pretrained folder, or a hub id (needs network)."""
    max_length: int = 128
    """Tokens kept per text; cost grows about linearly with it."""
    freeze_embeddings: bool = False
    """Freeze the token embeddings: half of MiniLM's weights leave the optimizer and the all-reduce."""
    freeze_layers: int = 0
    """Freeze the lowest N encoder layers: the backward pass stops above them (cheaper steps)."""

    def __post_init__(self) -> None:
        _check(bool(self.name), "model.name must not be empty")
        _check(0 <= self.freeze_layers <= 64, f"model.freeze_layers must be in [0, 64], got {self.freeze_layers}")
        _check(8 <= self.max_length <= 8192, f"model.max_length must be in [8, 8192], got {self.max_length}")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    train: str = "data/medical_abstracts/train.csv"
    """Training file: .csv, .jsonl/.json or .parquet, a local path or s3://bucket/key."""
    validation: str = "data/medical_abstracts/validation.csv"
    test: str = "data/medical_abstracts/test.csv"
    text_column: str = "text"
    label_column: str = "label"
    max_train_samples: int = 0
    """Use only the first N training rows (0 = all); for smoke runs."""
    max_eval_samples: int = 0
    """Use only the first N validation and test rows (0 = all)."""

    def __post_init__(self) -> None:
        for key in ("train", "validation", "test"):
            path = getattr(self, key)
            _check(
                path.split("?")[0].endswith((".csv", ".jsonl", ".json", ".parquet")),
                f"data.{key} must end in .csv, .jsonl, .json or .parquet, got {path!r}",
            )
        _check(self.max_train_samples >= 0, f"data.max_train_samples must be >= 0, got {self.max_train_samples}")
        _check(self.max_eval_samples >= 0, f"data.max_eval_samples must be >= 0, got {self.max_eval_samples}")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    lr: float = 5e-5
    """Peak learning rate lr0 of AdamW."""
    lr_decay: float = 0.0
    """beta in lr_t = lr0 / (1 + beta * t), t in optimizer steps after warm-up; 0 = constant."""
    warmup_steps: int = 0
    """Linear warm-up from 0 to lr0 over this many steps."""
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this; 0 = no clipping."""
    batch_size: int = 16
    """Per worker; the global batch is batch_size * num_workers."""
    epochs: int = 2
    max_steps: int = 0
    """Stop after this many optimizer steps (0 = run all epochs)."""

    def __post_init__(self) -> None:
        _check(0 < self.lr < 1, f"optim.lr must be in (0, 1), got {self.lr}")
        _check(self.lr_decay >= 0, f"optim.lr_decay must be >= 0, got {self.lr_decay}")
        _check(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.max_grad_norm >= 0, f"optim.max_grad_norm must be >= 0, got {self.max_grad_norm}")
        _check(1 <= self.batch_size <= 4096, f"optim.batch_size must be in [1, 4096], got {self.batch_size}")
        _check(1 <= self.epochs <= 1000, f"optim.epochs must be in [1, 1000], got {self.epochs}")
        _check(self.max_steps >= 0, f"optim.max_steps must be >= 0, got {self.max_steps}")


@dataclass(frozen=True, kw_only=True)
class PowerSGDConfig:
    rank: int = 2
    """Rank of the low-rank gradient approximation: higher is closer to exact and sends more."""
    warmup_steps: int = 10
    """Plain all-reduce for this many steps first (PowerSGD needs at least 2)."""
    error_feedback: bool = True
    """Carry the compression error into the next step; keeps convergence close to exact."""

    def __post_init__(self) -> None:
        _check(1 <= self.rank <= 64, f"powersgd.rank must be in [1, 64], got {self.rank}")
        _check(self.warmup_steps >= 2, f"powersgd.warmup_steps must be >= 2, got {self.warmup_steps}")


@dataclass(frozen=True, kw_only=True)
class PruneConfig:
    ratio: float = 0.0
    """Fraction of Linear weights zeroed by global L1 magnitude (0 = off). Masks do not speed up
    dense kernels: this buys a smaller compressed model, not faster training."""
    schedule: Literal["oneshot", "cubic"] = "oneshot"
    """oneshot: all at start_step; cubic: Zhu & Gupta (2017) ramp from start_step to end_step."""
    start_step: int = 0
    end_step: int = 0
    """cubic only: the step by which the target ratio is reached."""
    frequency: int = 10
    """cubic only: steps between mask updates."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.ratio <= 0.95, f"prune.ratio must be in [0, 0.95], got {self.ratio}")
        _check(self.start_step >= 0, f"prune.start_step must be >= 0, got {self.start_step}")
        _check(self.frequency >= 1, f"prune.frequency must be >= 1, got {self.frequency}")
        if self.schedule == "cubic" and self.ratio > 0:
            _check(self.end_step > self.start_step, f"prune.end_step must be > prune.start_step for the cubic schedule, got {self.end_step}")


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    teacher: str = ""
    """A finished spotfit run folder or a model folder ('' = no distillation)."""
    alpha: float = 0.5
    """Weight of the KD term: alpha * T^2 * KL + (1 - alpha) * CE."""
    temperature: float = 2.0
    student: Literal["half", "same"] = "half"
    """half: the teacher's architecture with every other layer dropped, initialised from the
    teacher (as DistilBERT); same: model.name as configured."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.alpha <= 1.0, f"distill.alpha must be in [0, 1], got {self.alpha}")
        _check(self.temperature > 0, f"distill.temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    mode: Literal["uniform", "entropy", "top_entropy"] = "uniform"
    """entropy: draw samples with p ~ epsilon + predictive entropy; top_entropy: keep the
    top_fraction most uncertain each epoch. Both start after warmup_epochs uniform epochs."""
    warmup_epochs: int = 1
    epsilon: float = 0.1
    top_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check(self.warmup_epochs >= 0, f"sampling.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _check(self.epsilon > 0, f"sampling.epsilon must be > 0, got {self.epsilon}")
        _check(0 < self.top_fraction <= 1, f"sampling.top_fraction must be in (0, 1], got {self.top_fraction}")


@dataclass(frozen=True, kw_only=True)
class EntropyLossConfig:
    mode: Literal["none", "minimize", "confidence_penalty"] = "none"
    """minimize: L + weight * H(p) (Grandvalet & Bengio); confidence_penalty: L - weight * H(p)
    (Pereyra et al. 2017)."""
    weight: float = 0.0

    def __post_init__(self) -> None:
        _check(self.weight >= 0, f"entropy.weight must be >= 0, got {self.weight}")


@dataclass(frozen=True, kw_only=True)
class CostConfig:
    instance_type: str = "m5.xlarge"
    """How to price a node with no spotfit labels (a laptop, a local Ray)."""
    market: Literal["spot", "on-demand"] = "on-demand"
    price_per_hour: float = 0.0
    """Fixed $/h for unlabelled nodes instead of instance_type's price (0 = use the price)."""
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        _check(self.price_per_hour >= 0, f"cost.price_per_hour must be >= 0, got {self.price_per_hour}")


Precision = Literal["auto", "fp32", "bf16", "fp16"]
GradCompression = Literal["none", "fp16", "bf16", "powersgd"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    name: str = "job"
    """Job name: the prefix of the run name and the run folder."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    powersgd: PowerSGDConfig = field(default_factory=PowerSGDConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    entropy: EntropyLossConfig = field(default_factory=EntropyLossConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    budget_usd: float = 0.0
    """Stop cleanly, checkpoint kept, once the run has spent this much (0 = no budget)."""
    time_limit_s: float = 0.0
    """Stop cleanly, checkpoint kept, after this many seconds of training (0 = none)."""
    num_workers: int = 2
    """Ray Train workers, one DDP rank each."""
    cpus_per_worker: int = 1
    """CPU threads each worker trains with (torch intra-op threads)."""
    use_gpu: Literal["auto", "true", "false"] = "auto"
    """auto: GPUs when the cluster has one per worker."""
    precision: Precision = "auto"
    """auto: bf16 on GPUs that have it, fp16 + GradScaler on older GPUs, bf16 on CPUs with native
    bf16 (AVX512-BF16 or AMX), else fp32 (bf16 emulated on AVX2 trained 20x slower)."""
    grad_compression: GradCompression = "none"
    """DDP comm hook: fp16 halves all-reduce bytes, powersgd sends low-rank factors; none is exact."""
    checkpoint_every: int = 0
    """Checkpoint every N optimizer steps (0 = at the end of each epoch only)."""
    storage_path: str = "runs/ray"
    """Where Ray Train keeps checkpoints: a local folder or s3://bucket/prefix."""
    run_name: str = ""
    """Ray Train run name ('' = <name>-<time>). Re-using a name resumes from its latest checkpoint."""
    max_failures: int = 0
    """Worker-group restarts Ray Train may make, each resuming from the latest checkpoint."""
    output_dir: str = ""
    """Run folder for the final model and metrics.json ('' = runs/<run_name>)."""
    seed: int = 0
    log_every: int = 10
    """Print a progress line every N steps."""

    def __post_init__(self) -> None:
        _check(bool(self.name) and "/" not in self.name, f"name must be a non-empty word without '/', got {self.name!r}")
        _check(1 <= self.num_workers <= 1024, f"num_workers must be in [1, 1024], got {self.num_workers}")
        _check(1 <= self.cpus_per_worker <= 256, f"cpus_per_worker must be in [1, 256], got {self.cpus_per_worker}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.max_failures >= -1, f"max_failures must be >= -1 (-1 = unlimited), got {self.max_failures}")
        _check(self.budget_usd >= 0, f"budget_usd must be >= 0, got {self.budget_usd}")
        _check(self.time_limit_s >= 0, f"time_limit_s must be >= 0, got {self.time_limit_s}")
        _check(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        _check("/" not in self.run_name, f"run_name must not contain '/', got {self.run_name!r}")


# ---------------------------------------------------------------------------------------------
# Building dataclasses from plain mappings, with the key path in every error.


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking unknown keys and value types."""
    where = prefix.rstrip(".") or "the config"
    _check(isinstance(data, dict), f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"unknown key {prefix}{unknown[0] if unknown else ''}; allowed: {', '.join(sorted(known))}")
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return build(tp, value, f"{key}.")
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool) and "true" in allowed:
            value = str(value).lower()
        _check(value in allowed, f"{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner, value, key)
    if tp is bool:
        _check(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
    elif tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{key} must be an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{key} must be a number, got {value!r}")
        return float(value)
    elif tp is str:
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool), f"{key} must be a string, got {value!r}")
        return str(value)
    return value


def parse_overrides(pairs: list[str]) -> dict:
    """`["optim.lr=1e-4", "num_workers=2"]` -> nested dict; values are parsed as YAML scalars."""
    nested: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        _check(bool(sep) and bool(key), f"--set takes key=value, got {pair!r}")
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            _check(isinstance(node, dict), f"--set {key}: {part} is not a section")
        node[leaf] = value
    return nested


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    _check(path.is_file(), f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    _check(isinstance(data, dict), f"config file {path} must hold a mapping at the top level")
    return data


def load_config(path: str | Path, overrides: list[str] = (), cls: type = TrainConfig) -> Any:
    """Read YAML, apply `--set` overrides, build and check the typed config."""
    return build(cls, merge(read_yaml(path), parse_overrides(list(overrides))))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
