"""`spotfit tune` end to end on the session's local Ray: two trials of the tiny job, 1 CPU worker each."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
TUNE_TINY = str(ROOT / "configs" / "tune_tiny.yaml")
TARGET = 0.2  # the random tiny model hovers around it: a trial may reach it or not, the checks hold either way


@pytest.mark.ray
def test_tune_runs_priced_trials_and_picks_the_cheapest_that_reached(ray_session, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    rc = main(["tune", "--config", TUNE_TINY, "--target-accuracy", str(TARGET), "--trials", "2", "--budget-usd", "5",
               "--set", f"output_dir={sweep}", "--set", f"storage_path={tmp_path / 'ray'}",
               "--set", "optim.max_steps=6",             # epochs of 4 steps: the second is cut to 2
               "--set", "cost.price_per_hour=0.192",     # a fixed node price: no AWS lookup in a test
               "--set", "tune.prune_ratios=[0.5]"])      # one prune ratio, so its sparsity is checked on every trial
    out = capsys.readouterr().out
    assert rc == 0
    assert out.strip().splitlines()[-1] == str(sweep.resolve())
    results = json.loads((sweep / "tune_results.json").read_text())
    trials = results["trials"]
    assert len(trials) == 2 and not any("error" in t for t in trials)
    # the first pulls explore: two different arms, both from the space
    assert {t["lr_decay"] for t in trials} == {0.0, 0.1} and {t["prune_ratio"] for t in trials} == {0.5}
    for t in trials:
        assert t["cost_usd"] > 0 and t["node_seconds"] > 0 and t["price_source"] == "configured"
        # node-seconds are nodes' worth held x seconds: 1 worker CPU + the trial's 0.1 of the 4-CPU node
        assert t["cost_usd"] == pytest.approx(0.192 * t["node_seconds"] / 3600)
        assert t["node_seconds"] < results["wall_seconds"] * 1.1 / 4
        assert t["step"] == 6 and t["train_seconds"] > 0 and 0 <= t["test_accuracy"] <= 1
        assert t["sparsity"] == pytest.approx(0.5, abs=0.01)  # measured zeros in the Linear weights
        assert (Path(t["checkpoint"]) / "model" / "config.json").exists()
        curve = t["val_accuracy_per_epoch"]
        assert len(curve) == 2 and t["reached"] == (max(curve) >= TARGET)
        if t["reached"]:
            share = 4 / 6 if curve[0] >= TARGET else 1.0
            assert t["usd_to_target"] == pytest.approx(t["cost_usd"] * share)
    reached = [t for t in trials if t["reached"]]
    if reached:
        best = min(reached, key=lambda t: t["usd_to_target"])
        assert results["best"]["trial_id"] == best["trial_id"]
        assert f"optim.lr_decay={best['lr_decay']:g} prune.ratio=0.5" in out
    else:
        assert results["best"] is None and f"no trial reached {TARGET} val accuracy" in out
    assert results["budget_stop"] == ""  # two tiny trials are far from $5
    assert out.count("[spotfit] trial ") == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "0"], "--trials must be in [1, 1000], got 0"),
        (["--target-accuracy", "1.5"], "--target-accuracy must be in (0, 1], got 1.5"),
        (["--budget-usd", "-1"], "--budget-usd must be >= 0, got -1.0"),
        (["--set", "tune.lr_decays=[-0.1]"], "tune.lr_decays must be finite and >= 0, got -0.1"),
        (["--set", "tune.prune_ratios=half"], "tune.prune_ratios must be a list of numbers, got 'half'"),
        (["--set", "tune.arms=3"], "unknown key tune.arms; allowed: lr_decays, miss_penalty, prune_ratios, seed"),
        (["--set", "optim.lr=2"], "optim.lr must be in (0, 1), got 2.0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    base = ["--target-accuracy", "0.5", "--trials", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "tune", "--config", TUNE_TINY, *base, *args],
        cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_submit_checks_a_tune_command_with_its_tune_section():
    from orchestrator.jobs import plan_submission
    from pipeline.config import ConfigError

    ok = plan_submission(["spotfit", "tune", "--config", TUNE_TINY, "--target-accuracy", "0.3", "--trials", "2",
                          "--set", "tune.seed=3"], ROOT)
    assert ok.metadata["spotfit_command"] == "spotfit tune" and ok.metadata["spotfit_name"] == "tune-tiny"
    with pytest.raises(ConfigError, match="unknown key tune.arms"):
        plan_submission(["spotfit", "tune", "--config", TUNE_TINY, "--set", "tune.arms=2"], ROOT)
