"""Compressed gradients through DDP communication hooks, with the bytes each step sends counted.

The count is the all-reduce payload one worker contributes per step (what the hook hands to the
collective), not the ring's 2(N-1)/N wire factor, which is the same for every choice.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

from pipeline.config import ConfigError, PowerSGDConfig

FP32_BYTES = 4
HALF_BYTES = 2


def check_backend(grad_compression: str, backend: str) -> None:
    """Refuse at start-up what the backend cannot do, instead of failing mid-run."""
    if grad_compression == "bf16" and backend != "nccl":
        raise ConfigError(
            f"grad_compression=bf16 needs the NCCL backend (CUDA 11+, NCCL 2.10+); this run uses {backend}: "
            "use fp16 or powersgd"
        )


def powersgd_bucket_bytes(shapes: list[torch.Size], rank: int, min_compression_rate: float = 2.0) -> int:
    """Bytes PowerSGD sends for one bucket once compression is on: P and Q factors for each
    matrix worth compressing, the tensor itself otherwise (mirrors torch's `_should_compress`)."""
    total = 0
    for shape in shapes:
        numel = shape.numel()
        if len(shape) <= 1:
            total += numel * FP32_BYTES
            continue
        n, m = shape[0], numel // shape[0]
        r = min(n, m, rank)
        if (n + m) * r * min_compression_rate < n * m:
            total += (n + m) * r * FP32_BYTES
        else:
            total += numel * FP32_BYTES
    return total


def bucket_bytes(kind: str, bucket: dist.GradBucket, powersgd_state: powerSGD_hook.PowerSGDState | None) -> int:
    numel = bucket.buffer().numel()
    if kind in ("fp16", "bf16"):
        return numel * HALF_BYTES
    if kind == "powersgd" and powersgd_state.iter >= powersgd_state.start_powerSGD_iter:
        shapes = [g.shape for g in bucket.gradients()]
        return powersgd_bucket_bytes(shapes, powersgd_state.matrix_approximation_rank, powersgd_state.min_compression_rate)
    return numel * FP32_BYTES


@dataclass
class CommCounter:
    """Bytes handed to the all-reduce, accumulated over the current step and over the run."""

    step_bytes: int = 0
    total_bytes: int = 0
    steps: int = 0
    history: list[int] = field(default_factory=list)

    def add(self, nbytes: int) -> None:
        self.step_bytes += nbytes

    def end_step(self) -> int:
        sent, self.step_bytes = self.step_bytes, 0
        self.total_bytes += sent
        self.steps += 1
        self.history.append(sent)
        return sent

    @property
    def mean_per_step(self) -> float:
        return self.total_bytes / self.steps if self.steps else 0.0


def register(ddp_model: torch.nn.parallel.DistributedDataParallel, kind: str, psgd: PowerSGDConfig) -> CommCounter:
    """Register the hook for `kind` (none|fp16|bf16|powersgd) wrapped so it counts its bytes."""
    inner = {
        "none": default_hooks.allreduce_hook,
        "fp16": default_hooks.fp16_compress_hook,
        "bf16": default_hooks.bf16_compress_hook,
        "powersgd": powerSGD_hook.powerSGD_hook,
    }[kind]
    counter = CommCounter()
    psgd_state = None
    if kind == "powersgd":
        psgd_state = powerSGD_hook.PowerSGDState(
            process_group=None,
            matrix_approximation_rank=psgd.rank,
            start_powerSGD_iter=psgd.warmup_steps,
            use_error_feedback=psgd.error_feedback,
            warm_start=psgd.error_feedback,
        )

    def counting_hook(state, bucket):
        counter.add(bucket_bytes(kind, bucket, psgd_state))
        return inner(state, bucket)

    ddp_model.register_comm_hook(psgd_state, counting_hook)
    return counter
