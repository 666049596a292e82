"""The search policy: a bandit over (lr_decay, prune_ratio) arms whose objective is dollars to a target accuracy.

Pure Python, no Ray: the Tune adapter (`searcher.py`) asks `propose()` for the next arm and hands
back what a trial measured with `record()`.

Why a bandit and not Bayesian optimisation: the space is a handful of discrete settings, a trial
costs real money, and each arm's dollars-to-target is noisy (spot prices, node speed). Thompson
sampling spends the pulls on arms that may be cheapest and stops paying for ones that clearly are
not, with no model of the space to get wrong.

The objective of one trial (`outcome_from_curve`): if validation accuracy reaches the target at the
end of epoch k, it cost what the run spent up to that epoch, prorated by optimizer steps (the
inverse-time schedule and one-shot pruning do not depend on the total step count, so the same
configuration with `optim.epochs = k` repeats those epochs). A miss costs what it spent times
`miss_penalty` (the money is gone and a run that reaches the target is still needed), plus a term
for how far it fell short, so that a sweep in which every arm misses drifts toward the target.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from itertools import product

from pipeline.config import ConfigError


@dataclass(frozen=True, order=True)
class Arm:
    lr_decay: float
    """beta in lr_t = lr0 / (1 + beta * t) (`optim.lr_decay`)."""
    prune_ratio: float
    """Fraction of Linear weights zeroed (`prune.ratio`)."""


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    lr_decays: tuple[float, ...] = (0.0, 0.01, 0.1)
    """Values of optim.lr_decay to try; 0 keeps the learning rate constant."""
    prune_ratios: tuple[float, ...] = (0.0, 0.3, 0.5)
    """Values of prune.ratio to try; pruning buys a smaller model, never faster dense training."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_decays", tuple(float(v) for v in self.lr_decays))
        object.__setattr__(self, "prune_ratios", tuple(float(v) for v in self.prune_ratios))
        for key, values in (("tune.lr_decays", self.lr_decays), ("tune.prune_ratios", self.prune_ratios)):
            if not values:
                raise ConfigError(f"{key} must list at least one value")
            if len(set(values)) != len(values):
                raise ConfigError(f"{key} lists a value twice: {list(values)}")
        for v in self.lr_decays:
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"tune.lr_decays must be finite and >= 0, got {v}")
        for v in self.prune_ratios:
            if not 0.0 <= v <= 0.95:
                raise ConfigError(f"tune.prune_ratios must be in [0, 0.95], got {v}")

    @property
    def arms(self) -> tuple[Arm, ...]:
        return tuple(Arm(d, p) for d, p in product(self.lr_decays, self.prune_ratios))


@dataclass(frozen=True, kw_only=True)
class Objective:
    target_accuracy: float
    """Validation accuracy a trial must reach (the test split is only reported, never chosen on)."""
    miss_penalty: float = 2.0
    """A miss counts as miss_penalty x what it spent (+ its shortfall): at least 1, since the money is
    spent and the target still has to be bought."""

    def __post_init__(self) -> None:
        if not 0.0 < self.target_accuracy <= 1.0:
            raise ConfigError(f"--target-accuracy must be in (0, 1], got {self.target_accuracy}")
        if not self.miss_penalty >= 1.0:
            raise ConfigError(f"tune.miss_penalty must be >= 1, got {self.miss_penalty}")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one trial measured, as the objective sees it."""

    spent_usd: float
    accuracy: float
    """Best validation accuracy over the run's epochs."""
    usd_to_target: float | None = None
    """Dollars up to the first epoch that reached the target; None = missed."""
    epochs_to_target: int | None = None

    @property
    def reached(self) -> bool:
        return self.usd_to_target is not None


def outcome_from_curve(val_accuracy: list[float], epoch_end_steps: list[int], steps_done: int, spent_usd: float,
                       target: float) -> Outcome:
    """Outcome of a run from its validation accuracy after each epoch, the optimizer step each epoch
    ended at, and the steps it ran in all (what `spent_usd` paid for)."""
    if spent_usd < 0 or not math.isfinite(spent_usd):
        raise ValueError(f"spent_usd must be finite and >= 0, got {spent_usd}")
    if len(epoch_end_steps) < len(val_accuracy):
        raise ValueError(f"{len(val_accuracy)} validation scores but only {len(epoch_end_steps)} epoch ends")
    best = max(val_accuracy, default=0.0)
    for k, acc in enumerate(val_accuracy):
        if acc >= target:
            share = min(1.0, epoch_end_steps[k] / steps_done) if steps_done > 0 else 1.0
            return Outcome(spent_usd=spent_usd, accuracy=best, usd_to_target=spent_usd * share, epochs_to_target=k + 1)
    return Outcome(spent_usd=spent_usd, accuracy=best)


def effective_usd(outcome: Outcome, objective: Objective) -> float:
    """The dollars the policy minimises for one trial."""
    if outcome.reached:
        return outcome.usd_to_target
    shortfall = max(0.0, objective.target_accuracy - outcome.accuracy) / objective.target_accuracy
    return outcome.spent_usd * (objective.miss_penalty + shortfall)


@dataclass
class _ArmStats:
    costs: list[float] = field(default_factory=list)
    reached: int = 0
    banned: bool = False

    @property
    def mean(self) -> float:
        return sum(self.costs) / len(self.costs)


class BanditPolicy:
    """Thompson sampling on each arm's mean effective dollars (lower is better).

    Every arm is tried once first, in a seeded order. Then each proposal draws, per arm, a mean
    from a normal posterior N(observed mean, s^2 / n), where s is the spread seen across all pulls
    (pooled: one arm rarely has enough pulls of its own), and takes the cheapest draw. The same
    seed and the same recorded outcomes give the same proposals."""

    def __init__(self, space: SearchSpace, objective: Objective, *, seed: int = 0):
        self.space, self.objective = space, objective
        self.arms = space.arms
        self.rng = random.Random(seed)
        self.stats = {arm: _ArmStats() for arm in self.arms}
        self._first_order = list(self.arms)
        self.rng.shuffle(self._first_order)

    def propose(self) -> Arm:
        live = [a for a in self.arms if not self.stats[a].banned] or list(self.arms)  # all broken: retry rather than stop
        for arm in self._first_order:
            if arm in live and not self.stats[arm].costs:
                return arm
        spread = self._pooled_spread()
        draws = {a: self.rng.gauss(self.stats[a].mean, spread / math.sqrt(len(self.stats[a].costs))) for a in live}
        cheapest = min(draws.values())
        ties = [a for a in live if draws[a] == cheapest]
        return ties[0] if len(ties) == 1 else self.rng.choice(ties)

    def _pooled_spread(self) -> float:
        """Standard deviation of costs around their arm means; a floor keeps exploring when pulls agree exactly."""
        residuals = [c - s.mean for s in self.stats.values() for c in s.costs]
        all_costs = [c for s in self.stats.values() for c in s.costs]
        scale = max((abs(c) for c in all_costs), default=1.0) or 1.0
        dof = len(residuals) - sum(1 for s in self.stats.values() if s.costs)
        sd = math.sqrt(sum(r * r for r in residuals) / dof) if dof > 0 else scale
        return max(sd, 0.05 * scale)

    def record(self, arm: Arm, outcome: Outcome) -> float:
        """Note what a trial of `arm` measured; returns the effective dollars it counted."""
        if arm not in self.stats:
            raise ValueError(f"{arm} is not in the search space")
        cost = effective_usd(outcome, self.objective)
        self.stats[arm].costs.append(cost)
        self.stats[arm].reached += int(outcome.reached)
        return cost

    def ban(self, arm: Arm) -> None:
        """A trial of `arm` crashed: stop proposing it (unless every arm is banned)."""
        self.stats[arm].banned = True

    def best(self) -> Arm | None:
        """The arm with the lowest mean effective dollars among those that reached the target at least once."""
        reached = [a for a in self.arms if self.stats[a].reached and not self.stats[a].banned]
        return min(reached, key=lambda a: (self.stats[a].mean, a)) if reached else None

    def pulls(self, arm: Arm) -> int:
        return len(self.stats[arm].costs)
