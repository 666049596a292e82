"""The bandit policy on scripted reward tables: no Ray, no training."""
import random
from collections import Counter

import pytest

from pipeline.config import ConfigError
from tuning.policy import Arm, BanditPolicy, Objective, Outcome, SearchSpace, effective_usd, outcome_from_curve

SPACE = SearchSpace(lr_decays=(0.0, 0.01, 0.1), prune_ratios=(0.0, 0.5))
TARGET = Objective(target_accuracy=0.65)


def scripted(table: dict[Arm, tuple[float, float]], noise: float, rng: random.Random):
    """table: arm -> (dollars to target, accuracy). Dollars get multiplicative noise, as spot prices and node speed do."""
    def run(arm: Arm) -> Outcome:
        usd, acc = table[arm]
        usd *= 1.0 + rng.uniform(-noise, noise)
        return Outcome(spent_usd=usd, accuracy=acc, usd_to_target=usd if acc >= TARGET.target_accuracy else None)
    return run


def run_policy(policy: BanditPolicy, trial, rounds: int) -> list[Arm]:
    proposed = []
    for _ in range(rounds):
        arm = policy.propose()
        proposed.append(arm)
        policy.record(arm, trial(arm))
    return proposed


TABLE = {
    Arm(0.0, 0.0): (1.00, 0.70),
    Arm(0.0, 0.5): (0.90, 0.60),   # cheap but misses: must not win
    Arm(0.01, 0.0): (0.55, 0.68),  # the cheapest that reaches
    Arm(0.01, 0.5): (0.80, 0.66),
    Arm(0.1, 0.0): (0.70, 0.67),
    Arm(0.1, 0.5): (1.20, 0.50),
}


def test_converges_to_the_cheapest_arm_that_reaches_the_target():
    policy = BanditPolicy(SPACE, TARGET, seed=3)
    proposed = run_policy(policy, scripted(TABLE, noise=0.15, rng=random.Random(0)), rounds=120)
    counts = Counter(proposed)
    assert counts.most_common(1)[0][0] == Arm(0.01, 0.0)
    assert counts[Arm(0.01, 0.0)] > 60  # the last half of the budget goes mostly to it
    assert Counter(proposed[-40:])[Arm(0.01, 0.0)] > 30
    assert policy.best() == Arm(0.01, 0.0)
    assert counts[Arm(0.0, 0.5)] < 10  # the cheap miss is priced at 2x its spend, so it is dropped


def test_every_arm_is_tried_once_first_and_nothing_outside_the_space():
    policy = BanditPolicy(SPACE, TARGET, seed=0)
    proposed = run_policy(policy, scripted(TABLE, noise=0.3, rng=random.Random(1)), rounds=60)
    assert set(proposed[:len(SPACE.arms)]) == set(SPACE.arms)
    assert set(proposed) <= set(SPACE.arms)
    assert all(a.lr_decay in SPACE.lr_decays and a.prune_ratio in SPACE.prune_ratios for a in proposed)


def test_same_seed_same_proposals_other_seed_other_order():
    a = run_policy(BanditPolicy(SPACE, TARGET, seed=7), scripted(TABLE, 0.2, random.Random(5)), 30)
    b = run_policy(BanditPolicy(SPACE, TARGET, seed=7), scripted(TABLE, 0.2, random.Random(5)), 30)
    c = run_policy(BanditPolicy(SPACE, TARGET, seed=8), scripted(TABLE, 0.2, random.Random(5)), 30)
    assert a == b and a != c


def test_tied_arms_share_the_pulls_and_best_is_deterministic():
    space = SearchSpace(lr_decays=(0.0, 0.1), prune_ratios=(0.0,))
    table = {Arm(0.0, 0.0): (0.5, 0.7), Arm(0.1, 0.0): (0.5, 0.7)}
    policy = BanditPolicy(space, TARGET, seed=1)
    counts = Counter(run_policy(policy, scripted(table, noise=0.0, rng=random.Random(0)), rounds=200))
    assert min(counts.values()) > 60  # exact ties: neither arm is starved
    assert policy.best() == Arm(0.0, 0.0)  # equal means: the smaller arm, not a coin flip


def test_all_miss_reports_none_and_drifts_toward_the_target():
    table = {arm: (0.5, 0.30) for arm in SPACE.arms}
    table[Arm(0.1, 0.0)] = (0.5, 0.60)  # same spend, closest to 0.65
    policy = BanditPolicy(SPACE, TARGET, seed=2)
    counts = Counter(run_policy(policy, scripted(table, noise=0.05, rng=random.Random(3)), rounds=80))
    assert policy.best() is None
    assert counts.most_common(1)[0][0] == Arm(0.1, 0.0)


def test_a_crashed_arm_is_not_proposed_again_unless_all_crashed():
    space = SearchSpace(lr_decays=(0.0, 0.1), prune_ratios=(0.0,))
    policy = BanditPolicy(space, TARGET, seed=0)
    broken = policy.propose()
    policy.ban(broken)
    assert {policy.propose() for _ in range(20)} == {a for a in space.arms if a != broken}
    policy.ban(next(a for a in space.arms if a != broken))
    assert policy.propose() in space.arms


def test_objective_prorates_to_the_epoch_that_reached_the_target():
    # 3 epochs of 10 steps, then 5 more steps before a budget stop; $3 spent on 35 steps
    hit = outcome_from_curve([0.5, 0.66, 0.7], [10, 20, 30], steps_done=35, spent_usd=3.5, target=0.65)
    assert hit.reached and hit.epochs_to_target == 2
    assert hit.usd_to_target == pytest.approx(2.0) and hit.accuracy == 0.7
    miss = outcome_from_curve([0.5, 0.6], [10, 20], steps_done=20, spent_usd=2.0, target=0.65)
    assert not miss.reached and miss.usd_to_target is None
    # a miss costs 2x its spend plus its shortfall; a reach never costs more than it spent
    assert effective_usd(miss, TARGET) == pytest.approx(2.0 * (2.0 + 0.05 / 0.65))
    assert effective_usd(hit, TARGET) <= hit.spent_usd


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SearchSpace(lr_decays=()), "tune.lr_decays must list at least one value"),
        (lambda: SearchSpace(prune_ratios=(0.2, 0.2)), "tune.prune_ratios lists a value twice"),
        (lambda: SearchSpace(lr_decays=(-1.0,)), "tune.lr_decays must be finite and >= 0"),
        (lambda: SearchSpace(prune_ratios=(0.99,)), "tune.prune_ratios must be in [0, 0.95]"),
        (lambda: Objective(target_accuracy=1.5), "--target-accuracy must be in (0, 1]"),
        (lambda: Objective(target_accuracy=0.6, miss_penalty=0.5), "tune.miss_penalty must be >= 1"),
    ],
)
def test_bad_space_or_objective_is_a_config_error(build, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        build()


def test_recording_an_arm_outside_the_space_is_refused():
    with pytest.raises(ValueError):
        BanditPolicy(SPACE, TARGET).record(Arm(0.5, 0.0), Outcome(spent_usd=1.0, accuracy=0.7, usd_to_target=1.0))
