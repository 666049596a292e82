"""`spotfit cost` (from a ledger) and `spotfit plan`, through the real CLI entry point."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from orchestrator.cli import main
from orchestrator.costs import Owner
from orchestrator.ledger import Ledger


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SPOTFIT_PRICES", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))


def test_cost_json_and_table_from_a_ledger(tmp_path, capsys):
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append([
        {"t": 0, "kind": "node_up", "node": {"node_id": "n1" * 20, "instance_type": "g5.xlarge", "market": "spot", "cpus": 4, "gpus": 1},
         "usd_per_hour": 0.4, "source": "aws-spot-api"},
        {"t": 0, "kind": "hold", "node_id": "n1" * 20, "owner": asdict(Owner("05000000", "trial_3")), "cpus": 1, "gpus": 1},
        {"t": 1800, "kind": "tick"},
    ])
    assert main(["cost", "--ledger", str(ledger.path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["total_usd"] == pytest.approx(0.2) and rep["jobs"][0]["trials"][0]["spend_usd"] == pytest.approx(0.2)
    assert main(["cost", "--ledger", str(ledger.path)]) == 0
    table = capsys.readouterr().out
    assert "trial_3" in table and "g5.xlarge" in table and "0.2000" in table and "aws-spot-api" in table


def test_cost_missing_ledger_is_a_one_line_error(tmp_path, capsys):
    assert main(["cost", "--ledger", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_plan_prefers_spot_and_reports_young_daly(offline, capsys):
    assert main(["plan", "--instance", "g5.xlarge", "--market", "spot", "--hours", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    spot, od = out["plans"]
    assert spot["market"] == "spot" and spot["usd_per_hour"] == 0.4 and od["usd_per_hour"] == 1.006
    assert out["cheapest"] == "spot" and spot["wall_s"] > od["wall_s"]
    assert spot["young_daly_s"] == pytest.approx((2 * 60 * 20 * 3600) ** 0.5)
    assert main(["plan", "--instance", "g5.xlarge", "--hours", "10"]) == 0
    assert "Young/Daly" in capsys.readouterr().out


def test_plan_unknown_instance_is_a_one_line_error(offline, capsys):
    assert main(["plan", "--instance", "zz9.huge", "--hours", "1"]) == 2
    assert "cost.price_per_hour" in capsys.readouterr().err
