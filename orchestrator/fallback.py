"""Spot -> on-demand fallback: when a run has lost its spot nodes too often, move it.

Ray's launcher never does this by itself: a reclaimed spot node is replaced by another spot node
(cluster.yaml's gpu_spot), and Ray Train restarts the worker group from the last checkpoint. Each
restart wastes `restart_overhead_s` on every node of the run (replacement boot, setup, the steps
since the checkpoint). After `max_preemptions` losses within `window_s`, or as soon as the
expected spot cost of finishing exceeds on-demand's, spotfit re-submits the run with
label_selector {"spotfit/market": "on-demand"}, which only cluster.yaml's gpu_on_demand type
satisfies. The decision is pure (tested without Ray); `log_decision` writes it with both costs.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from pipeline.config import ConfigError

logger = logging.getLogger("spotfit.fallback")

Market = Literal["spot", "on-demand"]
ON_DEMAND_SELECTOR = {"spotfit/market": "on-demand"}
"""Ray label selector for Train workers that lands them on cluster.yaml's gpu_on_demand type."""


@dataclass(frozen=True, kw_only=True)
class FallbackPolicy:
    max_preemptions: int = 3
    """Spot losses within window_s after which the run moves to on demand (0 = never move)."""
    window_s: float = 3600.0
    """Sliding window for counting losses; also the span the preemption rate is estimated over."""
    restart_overhead_s: float = 420.0
    """Node time lost per preemption: ~4 min boot and setup + half a checkpoint interval of steps."""

    def __post_init__(self) -> None:
        if self.max_preemptions < 0:
            raise ConfigError(f"fallback.max_preemptions must be >= 0, got {self.max_preemptions}")
        if self.window_s <= 0:
            raise ConfigError(f"fallback.window_s must be > 0, got {self.window_s}")
        if self.restart_overhead_s < 0:
            raise ConfigError(f"fallback.restart_overhead_s must be >= 0, got {self.restart_overhead_s}")


@dataclass(frozen=True)
class FallbackDecision:
    market: Market
    preemptions_in_window: int
    expected_spot_usd: float
    """Expected cost to finish on spot at the observed preemption rate (inf: it would never finish)."""
    expected_on_demand_usd: float
    reason: str

    @property
    def label_selector(self) -> dict[str, str] | None:
        return dict(ON_DEMAND_SELECTOR) if self.market == "on-demand" else None


def count_in_window(preemption_times: list[float], now: float, window_s: float) -> int:
    return sum(1 for t in preemption_times if now - window_s <= t <= now)


def expected_cost(remaining_s: float, nodes: int, usd_per_hour: float, rate_per_s: float, overhead_s: float) -> float:
    """Dollars to finish `remaining_s` of work on `nodes` nodes when losses arrive at `rate_per_s`.

    A loss restarts the whole worker group, wasting overhead_s on every node, so only a fraction
    1 - rate * overhead of node time is progress; at or below zero the run never finishes.
    """
    useful = 1.0 - rate_per_s * overhead_s
    if useful <= 0:
        return math.inf
    return nodes * usd_per_hour * remaining_s / 3600.0 / useful


def decide(
    policy: FallbackPolicy,
    preemption_times: list[float],
    now: float,
    *,
    remaining_s: float,
    nodes: int,
    spot_usd_per_hour: float,
    on_demand_usd_per_hour: float,
) -> FallbackDecision:
    """Stay on spot or move to on demand, with the expected cost of finishing either way."""
    assert remaining_s >= 0 and nodes >= 1, (remaining_s, nodes)
    recent = count_in_window(preemption_times, now, policy.window_s)
    rate = recent / policy.window_s
    spot = expected_cost(remaining_s, nodes, spot_usd_per_hour, rate, policy.restart_overhead_s)
    on_demand = expected_cost(remaining_s, nodes, on_demand_usd_per_hour, 0.0, 0.0)
    costs = f"expected to finish: spot ${spot:.2f} vs on-demand ${on_demand:.2f}"
    if policy.max_preemptions and recent >= policy.max_preemptions:
        reason = f"{recent} spot preemptions in the last {policy.window_s / 60:g} min (limit {policy.max_preemptions}); {costs}"
        return FallbackDecision("on-demand", recent, spot, on_demand, reason)
    if policy.max_preemptions and spot > on_demand:
        reason = f"spot costs more than on-demand at {recent} preemptions per {policy.window_s / 60:g} min; {costs}"
        return FallbackDecision("on-demand", recent, spot, on_demand, reason)
    reason = f"{recent} spot preemptions in the last {policy.window_s / 60:g} min; {costs}"
    return FallbackDecision("spot", recent, spot, on_demand, reason)


def log_decision(run_name: str, decision: FallbackDecision, log: logging.Logger = logger) -> None:
    """One line per decision: on-demand moves at WARNING (they cost money), staying at INFO."""
    level = logging.WARNING if decision.market == "on-demand" else logging.INFO
    log.log(level, "run %s: %s: %s", run_name, "move to on-demand" if decision.market == "on-demand" else "stay on spot",
            decision.reason)
