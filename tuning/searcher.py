"""Ray Tune adapter for the bandit policy: `suggest` asks the policy, `on_trial_complete` tells it.

Everything that decides is in `policy.py`; this class only keeps trial ids apart. Dollars come
from the trial's own result (`cost_usd`, which the trainable meters) or from a `cost_of(trial_id,
result)` callable handed in, so this package needs no cost tracker. `spent()` is what the sweep
budget wrapper (`orchestrator/budget_tune.BudgetSearcher`) reads:

    BudgetSearcher(PolicySearcher(policy), budget_usd, spend=searcher.spent, prior_trial_usd=0.0)
"""
from __future__ import annotations

import pickle
from typing import Callable

from ray.tune.search import Searcher

from tuning.policy import Arm, BanditPolicy, Outcome, outcome_from_curve

METRIC = "cost_usd"
"""The name Tune is given for what the searcher minimises; the policy reads the full outcome."""


def outcome_from_result(result: dict, target: float, spent_usd: float) -> Outcome:
    """A trial's outcome from the metrics the trainable reports (see `orchestrator/tune_trial.py`)."""
    curve = list(result.get("val_accuracy_per_epoch") or [])
    ends = list(result.get("epoch_end_steps") or [])
    return outcome_from_curve(curve, ends, int(result.get("step") or 0), spent_usd, target)


def config_for(arm: Arm) -> dict:
    return {"lr_decay": arm.lr_decay, "prune_ratio": arm.prune_ratio}


class PolicySearcher(Searcher):
    def __init__(self, policy: BanditPolicy, cost_of: Callable[[str, dict], float | None] | None = None):
        super().__init__(metric=METRIC, mode="min")
        self.policy = policy
        self.cost_of = cost_of or (lambda trial_id, result: result.get("cost_usd"))
        self.arm_of: dict[str, Arm] = {}
        self.spent_usd: dict[str, float] = {}
        self.outcomes: dict[str, Outcome] = {}

    def suggest(self, trial_id: str) -> dict:
        arm = self.policy.propose()
        self.arm_of[trial_id] = arm
        return config_for(arm)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # Recorded here, not only on completion: BudgetSearcher reads a trial's spend before it
        # forwards on_trial_complete.
        cost = self.cost_of(trial_id, result)
        if cost is not None:
            self.spent_usd[trial_id] = float(cost)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        arm = self.arm_of.get(trial_id)
        if arm is None:  # not one of ours (a restored experiment's trial): nothing to learn from
            return
        if result:
            self.on_trial_result(trial_id, result)
        if error or not result or trial_id not in self.spent_usd:
            self.policy.ban(arm)  # a crash says nothing about dollars; do not pay for it again
            return
        outcome = outcome_from_result(result, self.policy.objective.target_accuracy, self.spent_usd[trial_id])
        self.outcomes[trial_id] = outcome
        self.policy.record(arm, outcome)

    def spent(self) -> dict[str, float]:
        """{trial_id: dollars} of the trials that reported a cost so far."""
        return dict(self.spent_usd)

    # Tune saves the base searcher with the experiment: the policy's pulls and RNG, so a resumed
    # sweep proposes what an uninterrupted one would have. `cost_of` is handed in again.
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"policy": self.policy, "arm_of": self.arm_of, "spent_usd": self.spent_usd, "outcomes": self.outcomes}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.policy, self.arm_of, self.spent_usd, self.outcomes = state["policy"], state["arm_of"], state["spent_usd"], state["outcomes"]
