"""Knowledge distillation: a frozen teacher's softened logits train a smaller student.

loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)
The T^2 keeps the soft-target gradients on the scale of the hard ones as T grows (Hinton et al.,
2015). The default student is the teacher with every other layer dropped, initialised from the
teacher's kept layers, as DistilBERT was; DistilBERT's numbers come from distilling during
pre-training, so expect a larger gap from distilling on a small fine-tuning set.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline import modeling
from pipeline.config import ConfigError, DistillConfig, ModelConfig


def kd_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher/T || student/T), averaged over the batch, in fp32."""
    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return t * t * F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")


def combine(ce: torch.Tensor, student_logits, teacher_logits, alpha: float, temperature: float) -> torch.Tensor:
    """The training loss from an already computed cross-entropy (the recipe's loss_step has it)."""
    return alpha * kd_term(student_logits, teacher_logits, temperature) + (1 - alpha) * ce


def kd_loss(student_logits, teacher_logits, labels, alpha: float, temperature: float) -> torch.Tensor:
    return combine(F.cross_entropy(student_logits.float(), labels), student_logits, teacher_logits, alpha, temperature)


def resolve_teacher(path: str) -> Path:
    """A spotfit run folder (its model/) or a save_pretrained folder; anything else is a user error."""
    folder = Path(path)
    for candidate in (folder / "model", folder):
        if (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(f"distill.teacher: {path} is not a finished spotfit run folder or a model folder (no config.json)")


def check_teacher(path: str, label2id: dict[str, int]) -> Path:
    """The teacher's folder, once its config.json shows it was trained on the data's labels."""
    folder = resolve_teacher(path)
    theirs = json.loads((folder / "config.json").read_text()).get("label2id", {})
    if {str(k): int(v) for k, v in theirs.items()} != label2id:
        raise ConfigError(f"distill.teacher: {path} was trained on labels {sorted(theirs)}, the data has {sorted(label2id)}")
    return folder


def load_teacher(path: str, label2id: dict[str, int]) -> nn.Module:
    """The teacher in eval mode with gradients off."""
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(check_teacher(path, label2id))
    return teacher.eval().requires_grad_(False)


@torch.no_grad()
def teacher_logits(teacher: nn.Module, batch: dict, autocast) -> torch.Tensor:
    """The teacher's logits for a batch (labels and other non-inputs left out); no graph kept."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with autocast():
        return teacher(**inputs).logits


def half_student(teacher: nn.Module) -> nn.Module:
    """A copy of the teacher keeping layers 0, 2, 4, ...: half the depth, same width and head.

    Embeddings, pooler and classifier are copied as they are; the student trains all of them.
    """
    encoder = getattr(teacher.base_model, "encoder", None)
    if encoder is None or not isinstance(getattr(encoder, "layer", None), nn.ModuleList):
        raise ConfigError(f"distill.student: half needs a BERT-like encoder.layer list; {type(teacher).__name__} has none (use student: same)")
    student = copy.deepcopy(teacher)
    student.base_model.encoder.layer = nn.ModuleList(student.base_model.encoder.layer[::2])
    student.config.num_hidden_layers = len(student.base_model.encoder.layer)
    return student.train().requires_grad_(True)


def student_model_config(model: ModelConfig, distill: DistillConfig) -> ModelConfig:
    """A half student is cut from the teacher, so it reads the teacher's folder (and tokenizer)."""
    if distill.teacher and distill.student == "half":
        return dataclasses.replace(model, name=str(resolve_teacher(distill.teacher)))
    return model


def build_student(teacher: nn.Module | None, model: ModelConfig, distill: DistillConfig, labels, vocab_size: int) -> nn.Module:
    """The model to train: the half-depth copy of the teacher, or model.name as configured."""
    if teacher is None or distill.student == "same":
        return modeling.load_model(model, labels, vocab_size)
    student = half_student(teacher)
    if model.freeze_embeddings:
        student.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    return student
