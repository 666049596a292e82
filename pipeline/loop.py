"""One training step, free of Ray, shared by the Ray Train recipe and the plain-DDP benchmark."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Buffers synced once at wrap time, not every forward: BERT's buffers are constants, and resumed
# pruning masks (computed alike on every rank) would otherwise cost as many bytes as the gradients.
DDP_KWARGS = {"forward_sync_buffers": False}


def loss_step(model, batch: dict, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass and loss (cross-entropy); returns (loss, logits). Pops `labels` from batch."""
    labels = batch.pop("labels")
    with autocast():
        logits = model(**batch).logits
    # the loss in fp32: log-softmax over bf16 logits loses the small differences that matter late in training
    return F.cross_entropy(logits.float(), labels), logits


def optimizer_step(loss, params, optimizer, scaler, schedule, max_grad_norm: float) -> None:
    """Backward (all-reduce happens inside, through the DDP hook), clip, step, schedule."""
    scaler.scale(loss).backward()
    if max_grad_norm:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
