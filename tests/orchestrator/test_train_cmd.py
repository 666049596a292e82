"""`spotfit train` end to end on the session's local Ray: the tiny job with 2 CPU workers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "tiny.yaml")


@pytest.mark.ray
def test_tiny_job_learns_and_fp16_halves_the_all_reduce(train_tiny, tmp_path):
    exact = train_tiny("none", "grad_compression=none", "optim.epochs=3")
    half = train_tiny("fp16", "grad_compression=fp16", "optim.epochs=1")

    losses = exact["epoch_train_loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert exact["num_workers"] == 2 and exact["precision"] == "fp32"
    for key in ("accuracy_before", "test_accuracy", "test_macro_f1", "train_seconds", "samples_per_second"):
        assert isinstance(exact[key], float)
    assert 0 <= exact["test_accuracy"] <= 1 and exact["samples_per_second"] > 0
    # tiny BERT: ~1.0M fp32 gradients a step; fp16 sends 2 bytes for each instead of 4
    assert exact["comm_bytes_per_step"] > 3e6
    assert half["comm_bytes_per_step"] == pytest.approx(exact["comm_bytes_per_step"] / 2)

    model_dir = tmp_path / "none" / "model"
    assert (model_dir / "config.json").exists() and (model_dir / "tokenizer.json").exists()
    labels = json.loads((model_dir / "labels.json").read_text())
    assert len(labels["label2id"]) == 5
    from transformers import AutoModelForSequenceClassification

    reloaded = AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert reloaded.config.id2label[0] == labels["id2label"]["0"]


@pytest.mark.ray
def test_a_second_run_resumes_from_the_saved_step(train_tiny, tmp_path):
    first = train_tiny("a", "run_name=resume-me", "optim.max_steps=6", "checkpoint_every=3")
    assert first["step"] == 6 and "resumed_from_step" not in first
    checkpoints = list((tmp_path / "ray" / "resume-me").glob("checkpoint_*"))
    assert checkpoints, "no checkpoint written"
    second = train_tiny("b", "run_name=resume-me", "optim.max_steps=10")
    assert second["resumed_from_step"] == 6 and second["step"] == 10


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=2", "optim.lr must be in (0, 1), got 2.0"),
        ("num_workers=two", "num_workers must be an integer, got 'two'"),
        ("grad_compression=zip", "grad_compression must be one of none, fp16, bf16, powersgd"),
        ("data.train=missing.csv", "data.train: missing.csv does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, override, message):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "train", "--config", TINY, "--set", override],
        cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert list(tmp_path.iterdir()) == []
