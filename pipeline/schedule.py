"""Inverse-time learning-rate decay, lr_t = lr0 / (1 + beta * t), after an optional linear warm-up."""
from __future__ import annotations

import torch


def inverse_time_factor(step: int, beta: float, warmup_steps: int = 0) -> float:
    """Multiplier of lr0 at optimizer step `step` (0-based): linear warm-up, then 1 / (1 + beta * t)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 1.0 / (1.0 + beta * (step - warmup_steps))


def inverse_time_schedule(optimizer: torch.optim.Optimizer, beta: float, warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: inverse_time_factor(step, beta, warmup_steps))
