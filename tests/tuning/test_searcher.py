"""The Tune adapter: by hand (no Ray workers), then under a real Tuner with a scripted trainable."""
import pytest
from ray.tune.search import Searcher

from orchestrator.budget_tune import BudgetSearcher
from tuning.policy import Arm, BanditPolicy, Objective, SearchSpace
from tuning.searcher import PolicySearcher, config_for

SPACE = SearchSpace(lr_decays=(0.0, 0.1), prune_ratios=(0.0, 0.5))
# lr_decay 0.1 without pruning reaches 0.7 at epoch 1 of 2; the others stop short or reach late
CURVES = {
    Arm(0.0, 0.0): [0.55, 0.66],
    Arm(0.0, 0.5): [0.40, 0.50],
    Arm(0.1, 0.0): [0.70, 0.72],
    Arm(0.1, 0.5): [0.50, 0.60],
}


def result_of(config: dict, cost: float = 0.2) -> dict:
    """What orchestrator/tune_trial.py reports for a run of 2 epochs of 10 steps."""
    curve = CURVES[Arm(config["lr_decay"], config["prune_ratio"])]
    return {"val_accuracy_per_epoch": curve, "val_accuracy": curve[-1], "epoch_end_steps": [10, 20], "step": 20, "cost_usd": cost}


def make(seed: int = 0) -> PolicySearcher:
    return PolicySearcher(BanditPolicy(SPACE, Objective(target_accuracy=0.65), seed=seed))


def test_suggest_complete_learns_the_cheapest_arm_and_prorates_the_cost():
    s = make()
    for i in range(12):
        config = s.suggest(f"t{i}")
        assert Arm(config["lr_decay"], config["prune_ratio"]) in SPACE.arms
        result = result_of(config)
        s.on_trial_result(f"t{i}", result)
        s.on_trial_complete(f"t{i}", result)
    assert s.policy.best() == Arm(0.1, 0.0)
    cheapest = [o for t, o in s.outcomes.items() if s.arm_of[t] == Arm(0.1, 0.0)]
    assert cheapest and all(o.usd_to_target == pytest.approx(0.1) and o.epochs_to_target == 1 for o in cheapest)
    late = [o for t, o in s.outcomes.items() if s.arm_of[t] == Arm(0.0, 0.0)]
    assert late[0].usd_to_target == pytest.approx(0.2)  # reached only after the second epoch
    assert sum(s.spent().values()) == pytest.approx(0.2 * 12)


def test_dollars_can_come_from_a_function_instead_of_the_result():
    paid = {}
    s = PolicySearcher(BanditPolicy(SPACE, Objective(target_accuracy=0.65)), cost_of=lambda trial, result: paid.get(trial))
    config = s.suggest("a")
    paid["a"] = 3.0
    result = {k: v for k, v in result_of(config).items() if k != "cost_usd"}
    s.on_trial_complete("a", result)
    assert s.spent() == {"a": 3.0} and s.outcomes["a"].spent_usd == 3.0


def test_a_crashed_trial_bans_its_arm():
    s = make()
    config = s.suggest("boom")
    s.on_trial_complete("boom", None, error=True)
    banned = Arm(config["lr_decay"], config["prune_ratio"])
    assert s.policy.stats[banned].banned and not s.policy.stats[banned].costs
    assert all(s.suggest(f"n{i}") != config_for(banned) for i in range(3))


def test_the_budget_wrapper_stops_starting_trials_when_spent_plus_projected_passes_it():
    inner = make()
    s = BudgetSearcher(inner, budget_usd=1.0, spend=inner.spent, prior_trial_usd=0.0)
    started = []
    for i in range(10):
        config = s.suggest(f"t{i}")
        if config is Searcher.FINISHED:
            break
        started.append(f"t{i}")
        result = result_of(config, cost=0.3)
        s.on_trial_result(f"t{i}", result)
        s.on_trial_complete(f"t{i}", result)
    # 0.9 spent + 0.3 projected would pass $1.00: three trials, then no more
    assert started == ["t0", "t1", "t2"]
    assert "sweep budget $1.00: spent $0.90" in s.stopped_reason
    assert len(inner.outcomes) == 3  # the policy saw every finished trial through the wrapper


@pytest.mark.ray
def test_under_a_real_tuner_with_the_budget_wrapper(ray_session, tmp_path):
    from ray import tune

    def scripted_trial(config):
        tune.report(result_of(config, cost=0.25))

    inner = make(seed=1)
    budgeted = BudgetSearcher(inner, budget_usd=1.0, spend=inner.spent, prior_trial_usd=0.0)
    tuner = tune.Tuner(
        tune.with_resources(scripted_trial, {"CPU": 0.1}),
        tune_config=tune.TuneConfig(search_alg=budgeted, num_samples=8, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="scripted", verbose=0),
    )
    grid = tuner.fit()
    assert not grid.errors
    # 4 x $0.25 = $1.00 fits exactly; a fifth would pass the budget
    assert len(grid) == 4 and len(inner.outcomes) == 4
    assert sorted(inner.arm_of.values()) == sorted(SPACE.arms)  # each arm once, first
    assert inner.policy.best() == Arm(0.1, 0.0)


def test_save_and_restore_continue_the_same_proposals(tmp_path):
    a = make(seed=4)
    for i in range(5):
        config = a.suggest(f"t{i}")
        a.on_trial_complete(f"t{i}", result_of(config))
    a.save(str(tmp_path / "searcher.pkl"))
    b = make(seed=99)
    b.restore(str(tmp_path / "searcher.pkl"))
    assert [b.suggest(f"u{i}") for i in range(5)] == [a.suggest(f"u{i}") for i in range(5)]
