"""Budgets and run pricing: dollars to seconds for a train run, the stop-starting rule for a sweep.

Pure functions over numbers and configs; the price lookup is handed in. The Tune adapter lives
in `budget_tune.py`, the train command calls `run_rate` / `seconds_for_budget` / `run_cost`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config import ConfigError, CostConfig, TrainConfig
from orchestrator.pricing import PriceBook, PriceUnavailable


def seconds_for_budget(budget_usd: float, usd_per_hour: float) -> float:
    """How long `usd_per_hour` may run before it has spent `budget_usd` (inf when it is free)."""
    if budget_usd < 0:
        raise ConfigError(f"budget_usd must be >= 0, got {budget_usd}")
    if usd_per_hour < 0:
        raise ConfigError(f"a price must be >= 0 $/h, got {usd_per_hour}")
    if usd_per_hour == 0:
        return math.inf
    return budget_usd / usd_per_hour * 3600.0


@dataclass(frozen=True)
class RunRate:
    usd_per_hour: float
    """The run's $/h: the node price times the nodes' worth of CPUs/GPUs it holds."""
    node_usd_per_hour: float
    nodes: float
    """Nodes' worth the run holds, by dominant resource: 0.5 = half a node, 2 = two nodes."""
    price_source: str


def node_price(cost: CostConfig, book: PriceBook | None = None) -> tuple[float, str]:
    """$/h of one node priced by `cost` (a fixed price_per_hour wins over the instance type)."""
    if cost.price_per_hour > 0:
        return cost.price_per_hour, "configured"
    price = (book or PriceBook()).price(cost.instance_type, cost.market, cost.region)
    return price.usd_per_hour, price.label


def run_rate(cfg: TrainConfig, use_gpu: bool, node_cpus: float, node_gpus: float = 0.0, book: PriceBook | None = None) -> RunRate:
    """The run's $/h on nodes of `node_cpus` CPUs and `node_gpus` GPUs priced by `cfg.cost`.

    Raises PriceUnavailable when no price is known; callers run on without a cost."""
    if node_cpus <= 0:
        raise ConfigError(f"a node must have CPUs to be priced, got {node_cpus}")
    held_cpus = cfg.num_workers * cfg.cpus_per_worker
    held_gpus = cfg.num_workers if use_gpu else 0
    nodes = max(held_cpus / node_cpus, held_gpus / node_gpus if node_gpus > 0 else 0.0)
    usd, source = node_price(cfg.cost, book)
    return RunRate(usd * nodes, usd, nodes, source)


def run_cost(rate: RunRate | None, held_seconds: float) -> dict:
    """What metrics.json records: the run's node-seconds times the price, and where the price came from."""
    if rate is None:
        return {"cost_usd": None, "price_source": "unavailable"}
    return {
        "cost_usd": rate.usd_per_hour * held_seconds / 3600.0,
        "cost_usd_per_hour": rate.usd_per_hour,
        "price_source": rate.price_source,
    }


def time_limit_for(cfg: TrainConfig, rate: RunRate | None) -> tuple[float, str]:
    """(time_limit_s for the recipe, one line saying why); 0 = no limit."""
    if cfg.budget_usd <= 0:
        return cfg.time_limit_s, ""
    if rate is None:
        return cfg.time_limit_s, f"[spotfit] budget ${cfg.budget_usd:.2f} not enforced: no price known for {cfg.cost.instance_type}"
    seconds = seconds_for_budget(cfg.budget_usd, rate.usd_per_hour)
    if math.isinf(seconds):
        return cfg.time_limit_s, f"[spotfit] budget ${cfg.budget_usd:.2f} not enforced: the price is $0/h"
    if cfg.time_limit_s and cfg.time_limit_s < seconds:
        return cfg.time_limit_s, ""
    return seconds, (f"[spotfit] budget ${cfg.budget_usd:.2f} at ${rate.usd_per_hour:.4f}/h ({rate.price_source}): "
                     f"training stops after {seconds:.0f} s with its checkpoint kept")


# ---------------------------------------------------------------------------------------------
# Sweeps


@dataclass(frozen=True)
class SweepBudget:
    budget_usd: float

    def __post_init__(self) -> None:
        if self.budget_usd <= 0:
            raise ConfigError(f"budget_usd for a sweep must be > 0, got {self.budget_usd}")

    def may_start(self, spent_usd: float, running_projected_usd: float, next_trial_usd: float) -> bool:
        """Start another trial only if what is spent, what running trials will still spend and
        what the new one is expected to cost all fit in the budget."""
        return spent_usd + running_projected_usd + next_trial_usd <= self.budget_usd

    def reason(self, spent_usd: float, running_projected_usd: float, next_trial_usd: float) -> str:
        return (f"[spotfit] sweep budget ${self.budget_usd:.2f}: spent ${spent_usd:.2f} + running ${running_projected_usd:.2f}"
                f" + next trial ${next_trial_usd:.2f} would pass it; starting no more trials")


def projected_trial_cost(finished_costs: list[float], prior_usd: float) -> float:
    """Expected cost of the next trial: the mean of finished ones, the prior before any finished."""
    return sum(finished_costs) / len(finished_costs) if finished_costs else prior_usd


__all__ = ["PriceUnavailable", "RunRate", "SweepBudget", "node_price", "projected_trial_cost", "run_cost", "run_rate",
           "seconds_for_budget", "time_limit_for"]
