"""The spot -> on-demand rule and its costs, without Ray."""
from __future__ import annotations

import logging
import math

import pytest

from orchestrator.fallback import FallbackPolicy, count_in_window, decide, expected_cost, log_decision
from pipeline.config import ConfigError

# g5.xlarge us-east-1, rounded: the figures only need the ratio (~0.4)
SPOT, ON_DEMAND = 0.40, 1.006
POLICY = FallbackPolicy(max_preemptions=3, window_s=3600, restart_overhead_s=420)


def run_decide(times, now=10_000.0, policy=POLICY, remaining_s=7200, nodes=2):
    return decide(policy, times, now, remaining_s=remaining_s, nodes=nodes,
                  spot_usd_per_hour=SPOT, on_demand_usd_per_hour=ON_DEMAND)


def test_expected_cost():
    assert expected_cost(3600, 2, 1.0, 0.0, 300) == pytest.approx(2.0)
    # one loss per hour wasting 6 min on each node: 90% useful -> 2 / 0.9
    assert expected_cost(3600, 2, 1.0, 1 / 3600, 360) == pytest.approx(2.0 / 0.9)
    assert expected_cost(3600, 1, 1.0, 1 / 300, 300) == math.inf  # never finishes


def test_window_counts_only_recent_losses():
    assert count_in_window([0, 5000, 9000, 10_000, 10_001], now=10_000, window_s=3600) == 2


def test_stays_on_spot_below_the_limit():
    d = run_decide([8000, 9000])
    assert d.market == "spot" and d.label_selector is None
    assert d.preemptions_in_window == 2
    # 2 losses/h * 420 s -> 76.7% useful: 2 nodes * 2 h * 0.40 / 0.7667
    assert d.expected_spot_usd == pytest.approx(2 * 2 * SPOT / (1 - 2 * 420 / 3600))
    assert d.expected_on_demand_usd == pytest.approx(2 * 2 * ON_DEMAND)


def test_moves_after_k_losses_in_the_window():
    d = run_decide([7000, 8000, 9000])
    assert d.market == "on-demand"
    assert d.label_selector == {"spotfit/market": "on-demand"}
    assert "3 spot preemptions in the last 60 min (limit 3)" in d.reason
    assert "spot $2.46 vs on-demand $4.02" in d.reason
    # the same losses spread over more than the window: stays
    assert run_decide([1000, 5000, 9000]).market == "spot"


def test_moves_when_spot_would_cost_more_even_below_k():
    policy = FallbackPolicy(max_preemptions=10, window_s=3600, restart_overhead_s=1800)
    d = run_decide([8000, 9000], policy=policy)  # 2 losses/h * 30 min each: never finishes
    assert d.market == "on-demand" and d.expected_spot_usd == math.inf
    assert "spot costs more than on-demand" in d.reason


def test_zero_disables_the_move():
    d = run_decide([9000] * 50, policy=FallbackPolicy(max_preemptions=0))
    assert d.market == "spot"


def test_policy_checks_are_user_errors():
    with pytest.raises(ConfigError, match="fallback.max_preemptions must be >= 0"):
        FallbackPolicy(max_preemptions=-1)
    with pytest.raises(ConfigError, match="fallback.window_s must be > 0"):
        FallbackPolicy(window_s=0)


def test_decision_is_logged_with_its_costs(caplog):
    with caplog.at_level(logging.INFO, logger="spotfit.fallback"):
        log_decision("medical-1", run_decide([7000, 8000, 9000]))
        log_decision("medical-2", run_decide([]))
    moved, stayed = caplog.records
    assert moved.levelno == logging.WARNING
    assert moved.getMessage().startswith("run medical-1: move to on-demand: 3 spot preemptions")
    assert "on-demand $4.02" in moved.getMessage()
    assert stayed.levelno == logging.INFO
    assert stayed.getMessage() == "run medical-2: stay on spot: 0 spot preemptions in the last 60 min; expected to finish: spot $1.60 vs on-demand $4.02"
