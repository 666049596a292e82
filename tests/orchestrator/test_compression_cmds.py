"""The four techniques in `spotfit train` on the session's local Ray (tiny job, 2 workers), then
`spotfit export --quantize int8` and a distilled half-depth student of the trained run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "tiny.yaml")


# tiny: 256 rows, 16 a worker, 2 workers -> 8 steps in a full epoch, 4 in a top-half one
TECHNIQUES = (
    "run_name=techniques", "optim.epochs=3",
    "prune.ratio=0.5", "prune.schedule=cubic", "prune.start_step=0", "prune.end_step=12", "prune.frequency=2",
    "sampling.mode=top_entropy", "sampling.warmup_epochs=1", "sampling.top_fraction=0.5",
    "entropy.mode=confidence_penalty", "entropy.weight=0.1",
)


@pytest.mark.ray
def test_pruned_entropy_sampled_run_resumes_its_masks_exports_int8_and_teaches_a_student(train_tiny, tmp_path):
    first = train_tiny("a", *TECHNIQUES, "optim.max_steps=10")
    # last mask update at step 8: 0.5 * (1 - (1 - 8/12)^3) = 0.4815, measured on the weights
    assert first["sparsity"] == pytest.approx(0.5 * (1 - (1 / 3) ** 3), abs=1e-3)
    second = train_tiny("b", *TECHNIQUES)  # same run_name: resumes the checkpoint, masks and all
    assert second["resumed_from_step"] == 10 and second["step"] == 16
    assert second["total_steps"] == 8 + 4 + 4  # top_entropy epochs train on half the rows
    assert second["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert len(second["epoch_train_entropy"]) == len(second["epoch_train_loss"])

    from transformers import AutoModelForSequenceClassification

    from pipeline import pruning

    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "b" / "model")
    assert not any("_mask" in k for k in saved.state_dict()) and pruning.sparsity(saved) == pytest.approx(0.5, abs=1e-3)

    assert main(["export", "--run", str(tmp_path / "b"), "--quantize", "int8", "--latency-samples", "4", "--repeats", "2"]) == 0
    export = json.loads((tmp_path / "b" / "export.json").read_text())
    assert (tmp_path / "b" / "model_int8" / "model_int8.pt").exists()
    # tiny BERT is mostly its embedding table (30522 x 32, kept fp32); only the 17.5k Linear
    # weights go from 4 bytes to 1 (less some pickling overhead per packed tensor)
    linear = sum(m.weight.numel() for m in saved.modules() if isinstance(m, torch.nn.Linear))
    assert (export["size_mb_fp32"] - export["size_mb_int8"]) * 1e6 > 0.5 * 3 * linear
    assert export["latency_ms_fp32"] > 0 and export["latency_ms_int8"] > 0
    assert abs(export["accuracy_int8"] - export["accuracy_fp32"]) <= 0.1 and export["test_samples"] == 64

    student = train_tiny("s", "run_name=student", f"distill.teacher={tmp_path / 'b'}", "optim.max_steps=4", "optim.epochs=1")
    assert student["num_hidden_layers"] == 1 and student["step"] == 4
    config = json.loads((tmp_path / "s" / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 1


@pytest.mark.parametrize(
    "override, message",
    [
        ("prune.ratio=1.2", "prune.ratio must be in [0, 0.95], got 1.2"),
        ("distill.alpha=-1", "distill.alpha must be in [0, 1], got -1.0"),
        ("distill.temperature=0", "distill.temperature must be > 0, got 0.0"),
        ("distill.teacher=no/such/run", "distill.teacher: no/such/run is not a finished spotfit run folder or a model folder"),
    ],
)
def test_bad_technique_values_are_one_line_exit_2(tmp_path, override, message):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "train", "--config", TINY, "--set", override, "--set", f"output_dir={tmp_path / 'out'}"],
        cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
    assert not (tmp_path / "out").exists()


def test_export_of_a_folder_that_is_not_a_run_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "export", "--run", str(tmp_path)],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2 and "is not a finished spotfit run" in proc.stderr and proc.stderr.strip().count("\n") == 0
