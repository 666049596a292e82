"""Predictive entropy: the per-sample uncertainty the sampler ranks by, and the loss term.

Signs, named for what they do to H(p):
  minimize            L + weight * H(p)  entropy minimisation (Grandvalet & Bengio, 2005): sharper
  confidence_penalty  L - weight * H(p)  confidence penalty (Pereyra et al., 2017): softer, calibrated
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.config import EntropyLossConfig

SIGN = {"none": 0.0, "minimize": 1.0, "confidence_penalty": -1.0}


def predictive_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_c p_c log p_c per sample, in nats, computed in fp32 from log-softmax (no log 0)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def entropy_term(logits: torch.Tensor, cfg: EntropyLossConfig) -> torch.Tensor | float:
    """What the config adds to the loss: +weight * mean H (minimize) or -weight * mean H (penalty)."""
    sign = SIGN[cfg.mode]
    if sign == 0.0 or cfg.weight == 0.0:
        return 0.0
    return sign * cfg.weight * predictive_entropy(logits).mean()
