"""Distillation: the loss against a hand computation, the half-depth student, teacher errors."""
import math

import pytest
import torch

from pipeline import distillation
from pipeline.config import ConfigError, DistillConfig
from tests.pipeline.tiny import batch, tiny_bert


def test_kd_loss_equals_the_hand_computed_value():
    s = torch.tensor([[1.0, 0.0, -1.0]])
    t = torch.tensor([[0.0, 2.0, 0.0]])
    y = torch.tensor([0])
    T, alpha = 2.0, 0.7

    def softmax(v):
        e = [math.exp(x / T) for x in v]
        return [x / sum(e) for x in e]

    ps, pt = softmax([1.0, 0.0, -1.0]), softmax([0.0, 2.0, 0.0])
    kl = sum(q * math.log(q / p) for p, q in zip(ps, pt))
    ce = -math.log(math.exp(1.0) / (math.exp(1.0) + 1 + math.exp(-1.0)))
    expected = alpha * T * T * kl + (1 - alpha) * ce
    assert distillation.kd_loss(s, t, y, alpha, T).item() == pytest.approx(expected, rel=1e-6)
    assert distillation.kd_loss(t, t, y, 1.0, T).item() == pytest.approx(0.0, abs=1e-7)


def test_half_student_keeps_every_other_layer_from_the_teacher():
    teacher = tiny_bert(layers=4)
    student = distillation.half_student(teacher)
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    assert len(teacher.bert.encoder.layer) == 4  # teacher untouched
    for s_idx, t_idx in ((0, 0), (1, 2)):
        assert torch.equal(student.bert.encoder.layer[s_idx].output.dense.weight, teacher.bert.encoder.layer[t_idx].output.dense.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert student.bert.encoder.layer[0].output.dense.weight.data_ptr() != teacher.bert.encoder.layer[0].output.dense.weight.data_ptr()
    out = student.eval()(**batch()).logits
    assert out.shape == (16, 3)


def test_teacher_from_a_run_folder_or_model_folder(tmp_path):
    teacher = tiny_bert()
    teacher.config.id2label, teacher.config.label2id = {0: "a", 1: "b", 2: "c"}, {"a": 0, "b": 1, "c": 2}
    teacher.save_pretrained(tmp_path / "run" / "model")
    for path in (tmp_path / "run", tmp_path / "run" / "model"):
        loaded = distillation.load_teacher(str(path), {"a": 0, "b": 1, "c": 2})
        assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    with pytest.raises(ConfigError, match="was trained on labels"):
        distillation.load_teacher(str(tmp_path / "run"), {"x": 0, "y": 1, "z": 2})


def test_bad_teacher_alpha_and_temperature_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a finished spotfit run folder or a model folder"):
        distillation.resolve_teacher(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"distill.alpha must be in \[0, 1\], got -1"):
        DistillConfig(alpha=-1)
    with pytest.raises(ConfigError, match="distill.temperature must be > 0, got 0"):
        DistillConfig(temperature=0)
