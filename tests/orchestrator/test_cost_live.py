"""The live check: a 2-worker tiny run on the session's local Ray gets a cost_usd that matches
the node-seconds its placement group held, as the cost tracker measured them, times the price."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from pipeline.config import CostConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "tiny.yaml")
PRICE = 3.6  # $/h for the whole local node


def _train(tmp_path: Path, out: str, *overrides: str) -> dict:
    args = ["train", "--config", TINY, "--set", f"output_dir={tmp_path / out}", "--set", f"storage_path={tmp_path / 'ray'}",
            "--set", f"cost.price_per_hour={PRICE}"]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    return json.loads((tmp_path / out / "metrics.json").read_text())


@pytest.mark.ray
def test_run_cost_matches_tracked_node_seconds_and_budget_stops_the_run(ray_session, tmp_path, capsys):
    ray = ray_session
    from orchestrator import tracker as tr

    handle = tr.start_tracker(CostConfig(price_per_hour=PRICE), tmp_path / "ledger.jsonl", interval_s=0.1, offline=True)
    try:
        job = ray.get_runtime_context().get_job_id()
        before = next((j["spend_usd"] for j in ray.get(handle.report.remote())["jobs"] if j["job"] == job), 0.0)
        m = _train(tmp_path, "full", "optim.epochs=2")
        rep = ray.get(handle.report.remote())
        tracked = next(j["spend_usd"] for j in rep["jobs"] if j["job"] == job) - before
        cpus = rep["nodes"][0]["cpus"]
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle)
    assert m["price_source"] == "configured" and m["cost_usd"] > 0
    assert m["cost_usd_per_hour"] == pytest.approx(PRICE * 2 / cpus)  # 2 workers x 1 CPU of the node's CPUs
    print(f"cost_usd {m['cost_usd']:.6f}  tracked {tracked:.6f}  ratio {m['cost_usd'] / tracked:.4f}")
    assert m["cost_usd"] == pytest.approx(tracked, rel=0.02)

    # a budget worth ~2 s of this run's $/h stops training early, checkpoint kept, said in one line
    budget = m["cost_usd_per_hour"] * 2.0 / 3600
    capsys.readouterr()
    b = _train(tmp_path, "budget", f"budget_usd={budget}", "optim.epochs=50")
    out = capsys.readouterr().out
    assert b["stopped"] == "time_limit" and b["step"] < m["step"] * 25
    assert "budget $" in out and "checkpoint kept" in out
    assert (tmp_path / "budget" / "model" / "config.json").exists()
