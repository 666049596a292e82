"""Tune adapter for the sweep budget: a Searcher wrapper that stops suggesting trials.

Running trials are left to finish (their spend is already counted as projected); stopping them
would waste what they spent. Dollars come from a callable handed in, so this module needs no
tracker: `spend()` returns {trial_id: dollars spent so far} for the sweep's trials.
"""
from __future__ import annotations

from typing import Callable

from ray.tune.search import Searcher

from orchestrator.budget import SweepBudget, projected_trial_cost


class BudgetSearcher(Searcher):
    def __init__(self, searcher: Searcher, budget_usd: float, spend: Callable[[], dict[str, float]], prior_trial_usd: float):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.budget, self.spend, self.prior = searcher, SweepBudget(budget_usd), spend, prior_trial_usd
        self.running: set[str] = set()
        self.finished_costs: list[float] = []
        self.stopped_reason = ""

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str):
        spent = self.spend()
        expected = projected_trial_cost(self.finished_costs, self.prior)
        running = sum(max(0.0, expected - spent.get(t, 0.0)) for t in self.running)
        total = sum(spent.values())
        if not self.budget.may_start(total, running, expected):
            if not self.stopped_reason:
                self.stopped_reason = self.budget.reason(total, running, expected)
                print(self.stopped_reason, flush=True)
            return Searcher.FINISHED
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            self.running.add(trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    # Tune saves every wrapper's state with the experiment each step and fails the sweep when a
    # wrapper cannot. The wrapped searcher saves itself; `spend` is handed in again on restore.
    def get_state(self) -> dict:
        return {"running": set(self.running), "finished_costs": list(self.finished_costs), "stopped_reason": self.stopped_reason}

    def set_state(self, state: dict) -> None:
        self.running, self.finished_costs = set(state["running"]), list(state["finished_costs"])
        self.stopped_reason = state["stopped_reason"]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.running.discard(trial_id)
        self.finished_costs.append(self.spend().get(trial_id, 0.0))
        self.searcher.on_trial_complete(trial_id, result, error)
