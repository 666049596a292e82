"""Global magnitude pruning of the Linear weights, one-shot or on the cubic schedule of Zhu & Gupta.

Masks come from `torch.nn.utils.prune`: each pruned Linear holds `weight_orig` (a parameter, the
same object the optimizer and DDP already hold) and `weight_mask` (a buffer), so masks go into
the checkpoint with the state dict. Masks do not speed up dense kernels: pruning buys a model
that compresses well on disk and a path to sparse kernels, not faster training or inference.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from pipeline.config import ConfigError, PruneConfig


def linear_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every Linear weight, the classifier included: the set the global threshold ranks."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear)]


def _effective(module: nn.Module) -> torch.Tensor:
    # `weight` is recomputed from weight_orig * weight_mask only in the forward pre-hook, so
    # right after load_state_dict it is stale; read the source of truth instead
    if hasattr(module, "weight_mask"):
        return module.weight_orig.detach() * module.weight_mask
    return module.weight.detach()


def _pruned_count(pairs) -> int:
    return sum(int((m.weight_mask == 0).sum()) for m, _ in pairs if hasattr(m, "weight_mask"))


def prune_to(model: nn.Module, ratio: float) -> None:
    """Raise the global sparsity of the Linear weights to `ratio`; masks only grow.

    With masks in place, `global_unstructured` prunes among the still-unpruned weights, so we ask
    for the absolute number still missing; the smallest |w| over all layers go first.
    """
    pairs = linear_weights(model)
    total = sum(m.weight.numel() for m, _ in pairs)
    missing = round(ratio * total) - _pruned_count(pairs)
    if missing <= 0:
        return
    with torch.no_grad():
        scores = {(m, name): _effective(m).abs() for m, name in pairs}
        prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=missing, importance_scores=scores)


def cubic_ratio(step: int, cfg: PruneConfig) -> float:
    """Zhu & Gupta (2017): s_t = s_f * (1 - (1 - (t - t0) / (n dt))^3), updated every dt steps.

    Fast early, when the redundant weights go, slow near the end, when the model has the least
    to spare; the target is reached at end_step.
    """
    if step < cfg.start_step:
        return 0.0
    span = cfg.end_step - cfg.start_step
    t = min(step - cfg.start_step, span)
    if t < span:
        t -= t % cfg.frequency  # between updates the mask holds
    return cfg.ratio * (1.0 - (1.0 - t / span) ** 3)


def target_ratio(step: int, cfg: PruneConfig) -> float:
    """The sparsity the schedule asks for before optimizer step `step` (0-based)."""
    if cfg.ratio == 0 or step < cfg.start_step:
        return 0.0
    return cfg.ratio if cfg.schedule == "oneshot" else cubic_ratio(step, cfg)


def maybe_prune(model: nn.Module, cfg: PruneConfig, step: int) -> bool:
    """Apply the schedule at `step`; True when masks changed. Idempotent, so safe after resume."""
    if cfg.ratio == 0 or step < cfg.start_step:
        return False
    if cfg.schedule == "cubic" and step < cfg.end_step and (step - cfg.start_step) % cfg.frequency:
        return False  # costs a pass over the masks otherwise, every step
    before = _pruned_count(linear_weights(model))
    prune_to(model, target_ratio(step, cfg))
    return _pruned_count(linear_weights(model)) != before


def restore_masks(model: nn.Module, state_dict: dict) -> None:
    """Give each Linear whose checkpoint holds a mask a placeholder mask, so load_state_dict fits.

    The parameter object survives (renamed weight_orig), so an optimizer built before this keeps
    its parameter order and its saved state lines up.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and f"{name}.weight_mask" in state_dict and not hasattr(module, "weight_mask"):
            prune.identity(module, "weight")


def remove_masks(model: nn.Module) -> None:
    """Make the zeros permanent (plain `weight` again) so save_pretrained and export see a normal model."""
    for module, name in linear_weights(model):
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, name)


def sparsity(model: nn.Module) -> float:
    """Measured fraction of exact zeros among the Linear weights (masked or not)."""
    pairs = linear_weights(model)
    zeros = sum(int((_effective(m) == 0).sum()) for m, _ in pairs)
    return zeros / max(sum(m.weight.numel() for m, _ in pairs), 1)


def prune_model(model: nn.Module, amount: float = 0.2) -> nn.Module:
    """The recipe API: zero the `amount` smallest-magnitude Linear weights (global L1), in place.

    Masks are made permanent, so the result saves and quantizes like any model; returns `model`.
    """
    if not 0.0 <= amount <= 0.95:
        raise ConfigError(f"prune_model: amount must be in [0, 0.95], got {amount}")
    prune_to(model, amount)
    remove_masks(model)
    return model
