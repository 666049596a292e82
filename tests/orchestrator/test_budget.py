"""Budgets: dollars to seconds, run pricing, the sweep's stop-starting rule and its Tune adapter."""
from __future__ import annotations

import math

import pytest

from orchestrator.budget import SweepBudget, projected_trial_cost, run_cost, run_rate, seconds_for_budget, time_limit_for
from orchestrator.pricing import PriceBook, PriceCache
from pipeline.config import ConfigError, CostConfig, TrainConfig


def test_seconds_for_budget():
    assert seconds_for_budget(1.0, 0.5) == pytest.approx(7200.0)
    assert seconds_for_budget(0.192, 0.192) == pytest.approx(3600.0)
    assert math.isinf(seconds_for_budget(5.0, 0.0))
    with pytest.raises(ConfigError):
        seconds_for_budget(-1, 1.0)


def test_run_rate_is_the_share_of_the_node_it_holds(tmp_path):
    book = PriceBook(cache=PriceCache(tmp_path / "p.json"), offline=True)
    cfg = TrainConfig(num_workers=2, cpus_per_worker=1, cost=CostConfig(instance_type="m5.xlarge"))
    rate = run_rate(cfg, use_gpu=False, node_cpus=4, book=book)
    assert (rate.node_usd_per_hour, rate.nodes, rate.price_source) == (0.192, 0.5, "snapshot (stale)")
    assert rate.usd_per_hour == pytest.approx(0.096)
    # 4 GPU workers on g5.xlarge nodes (4 CPUs, 1 GPU): four nodes' worth, by the GPUs
    gpu = TrainConfig(num_workers=4, cost=CostConfig(instance_type="g5.xlarge", market="spot"))
    assert run_rate(gpu, True, node_cpus=4, node_gpus=1, book=book).usd_per_hour == pytest.approx(4 * 0.40)
    fixed = TrainConfig(num_workers=2, cost=CostConfig(price_per_hour=1.0))
    assert run_rate(fixed, False, node_cpus=8, book=book).usd_per_hour == pytest.approx(0.25)
    assert run_cost(run_rate(fixed, False, node_cpus=8, book=book), 7200) == {"cost_usd": 0.5, "cost_usd_per_hour": 0.25, "price_source": "configured"}


def test_budget_becomes_a_time_limit(tmp_path):
    cfg = TrainConfig(num_workers=2, budget_usd=0.01, cost=CostConfig(price_per_hour=0.36))
    rate = run_rate(cfg, False, node_cpus=4)
    seconds, line = time_limit_for(cfg, rate)
    assert seconds == pytest.approx(0.01 / 0.18 * 3600)
    assert "budget $0.01" in line and "checkpoint kept" in line
    assert time_limit_for(TrainConfig(), rate) == (0.0, "")
    assert time_limit_for(cfg, None)[0] == 0.0


def test_sweep_rule():
    b = SweepBudget(10.0)
    assert b.may_start(spent_usd=4.0, running_projected_usd=2.0, next_trial_usd=4.0)
    assert not b.may_start(spent_usd=4.0, running_projected_usd=2.0, next_trial_usd=4.01)
    assert projected_trial_cost([], 3.0) == 3.0 and projected_trial_cost([1.0, 2.0], 3.0) == 1.5
    with pytest.raises(ConfigError):
        SweepBudget(0)


def test_budget_searcher_stops_suggesting_when_the_budget_would_pass():
    from ray.tune.search import Searcher

    from orchestrator.budget_tune import BudgetSearcher

    class Counting(Searcher):
        def __init__(self):
            super().__init__(metric="loss", mode="min")
            self.n = 0

        def suggest(self, trial_id):
            self.n += 1
            return {"lr": 10.0 ** -self.n}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    spent = {}
    s = BudgetSearcher(Counting(), budget_usd=1.0, spend=lambda: dict(spent), prior_trial_usd=0.3)
    assert s.suggest("t1") == {"lr": 0.1}
    assert s.suggest("t2") == {"lr": 0.01}
    assert s.suggest("t3") == {"lr": 0.001}        # 0 + 3 x 0.3 projected <= 1.0
    assert s.suggest("t4") is Searcher.FINISHED     # a fourth would make 1.2
    spent.update(t1=0.1, t2=0.1, t3=0.1)
    for t in ("t1", "t2", "t3"):
        s.on_trial_complete(t, {"loss": 1.0})
    # trials cost 0.1 each, not 0.3: 0.3 spent + 0.1 expected fits again
    assert s.suggest("t5") == {"lr": 0.0001}
    assert "sweep budget $1.00" in s.stopped_reason
