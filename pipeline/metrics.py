"""Classification metrics from a confusion matrix, which workers can sum with one all-reduce."""
from __future__ import annotations

import torch


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """counts[i, j] = samples of true class i predicted as j."""
    index = labels.long() * num_labels + preds.long()
    return torch.bincount(index, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def accuracy(cm: torch.Tensor) -> float:
    total = cm.sum().item()
    return cm.diagonal().sum().item() / total if total else 0.0


def macro_f1(cm: torch.Tensor) -> float:
    """Mean over classes of 2TP / (2TP + FP + FN); a class absent from both truth and prediction scores 0."""
    cm = cm.double()
    tp = cm.diagonal()
    denom = cm.sum(0) + cm.sum(1)  # = 2TP + FP + FN
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    return f1.mean().item()
