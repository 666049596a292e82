"""`spotfit tune`: search (lr_decay, prune_ratio) for the fewest dollars to a target validation accuracy.

Composes the pieces: the bandit policy (`tuning/policy.py`) behind its Tune adapter
(`tuning/searcher.py`), optionally inside the sweep budget (`budget_tune.BudgetSearcher`), over
trials that run the train recipe (`tune_trial.py`). Writes `tune_results.json` in a run folder
whose path is the last line printed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import data, sampling
from pipeline.config import ConfigError, TrainConfig, build, merge, parse_overrides, read_yaml, to_dict
from orchestrator import train_cmd


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="search LR decay and pruning for the cheapest run to a target accuracy",
                       description="Search optim.lr_decay x prune.ratio (the config's tune: section) with a bandit "
                                   "for the fewest dollars to reach a target validation accuracy.")
    p.add_argument("--config", required=True, help="YAML job config, optionally with a tune: section (see configs/tune_tiny.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. optim.epochs=3 or tune.lr_decays=[0,0.01] (repeatable)")
    p.add_argument("--target-accuracy", type=float, required=True, help="validation accuracy a trial must reach, in (0, 1]")
    p.add_argument("--trials", type=int, required=True, help="trials to run at most (one at a time)")
    p.add_argument("--budget-usd", type=float, default=0.0, help="stop starting trials once spent + the next trial's expected cost would pass this (0 = none)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, else start a local Ray)")
    p.set_defaults(run=run)


@dataclass(frozen=True, kw_only=True)
class TuneSettings:
    lr_decays: tuple[float, ...] = (0.0, 0.01, 0.1)
    """optim.lr_decay values to try (beta of lr0 / (1 + beta * t)); 0 = constant LR."""
    prune_ratios: tuple[float, ...] = (0.0, 0.3, 0.5)
    """prune.ratio values to try; pruning shrinks the saved model, it does not speed up training."""
    miss_penalty: float = 2.0
    """A trial that misses the target counts as this many times what it spent (>= 1)."""
    seed: int = 0
    """Seed of the policy's draws: the same seed and results give the same proposals."""

    def __post_init__(self) -> None:
        for key in ("lr_decays", "prune_ratios"):
            values = getattr(self, key)
            if not isinstance(values, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"tune.{key} must be a list of numbers, got {values!r}")
            object.__setattr__(self, key, tuple(float(v) for v in values))


@dataclass(frozen=True, kw_only=True)
class SweepArgs:
    target_accuracy: float
    trials: int
    budget_usd: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.trials <= 1000:
            raise ConfigError(f"--trials must be in [1, 1000], got {self.trials}")
        if not (self.budget_usd >= 0 and math.isfinite(self.budget_usd)):
            raise ConfigError(f"--budget-usd must be >= 0, got {self.budget_usd}")


def load(path: str, overrides: list[str]) -> tuple[TrainConfig, TuneSettings]:
    """The train config and the tune: section, each key checked, from one YAML file plus --set."""
    raw = merge(read_yaml(path), parse_overrides(overrides))
    tune_raw = raw.pop("tune", None) or {}
    return build(TrainConfig, raw), build(TuneSettings, tune_raw, "tune.")


def epoch_steps(cfg: TrainConfig, num_train: int) -> list[int]:
    """Optimizer steps of each epoch, as the recipe's sampler will count them (same for every trial)."""
    sampler = sampling.EntropySampler(num_train, cfg.sampling, rank=0, world=cfg.num_workers, seed=cfg.seed)
    return sampling.steps_in_epochs(sampler, cfg.optim.epochs, cfg.optim.batch_size)


def trial_rows(results, target: float) -> list[dict]:
    """One row per trial from Tune's results, scored by the same objective the searcher used."""
    from tuning.searcher import outcome_from_result

    rows = []
    for r in results:
        m, trial_id = r.metrics or {}, (r.metrics or {}).get("trial_id") or Path(r.path).name
        row = {"trial_id": trial_id, **{k: r.config.get(k) for k in ("lr_decay", "prune_ratio")}}
        if r.error or m.get("cost_usd") is None:
            rows.append({**row, "error": str(r.error or "no cost measured").splitlines()[0][:300], "reached": False})
            continue
        outcome = outcome_from_result(m, target, float(m["cost_usd"]))
        rows.append({
            **row,
            "val_accuracy": m.get("val_accuracy"), "best_val_accuracy": outcome.accuracy,
            "val_accuracy_per_epoch": m.get("val_accuracy_per_epoch"), "test_accuracy": m.get("test_accuracy"),
            "cost_usd": m["cost_usd"], "usd_to_target": outcome.usd_to_target, "epochs_to_target": outcome.epochs_to_target,
            "reached": outcome.reached, "train_seconds": m.get("train_seconds"), "node_seconds": m.get("node_seconds"),
            "price_source": m.get("price_source"), "step": m.get("step"), "sparsity": m.get("sparsity"),
            "checkpoint": m.get("checkpoint"),
        })
    return rows


def cheapest(rows: list[dict]) -> dict | None:
    reached = [r for r in rows if r.get("reached")]
    return min(reached, key=lambda r: (r["usd_to_target"], r["trial_id"])) if reached else None


def table(rows: list[dict]) -> str:
    head = f"{'trial':<14} {'lr_decay':>8} {'prune':>5} {'val acc':>7} {'test acc':>8} {'cost $':>10} {'$ to target':>11}  reached"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['trial_id']:<14} {r['lr_decay']:>8g} {r['prune_ratio']:>5g}  error: {r['error'][:60]}")
            continue
        to_target = f"{r['usd_to_target']:.6f}" if r["reached"] else "-"
        reached = f"yes (epoch {r['epochs_to_target']})" if r["reached"] else "no"
        lines.append(f"{r['trial_id']:<14} {r['lr_decay']:>8g} {r['prune_ratio']:>5g} {r['best_val_accuracy']:>7.4f} "
                     f"{r['test_accuracy']:>8.4f} {r['cost_usd']:>10.6f} {to_target:>11}  {reached}")
    return "\n".join(lines)


def run(args) -> int:
    started = time.time()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Tune passes this to trial actors: relative data paths mean the same in every trial and node.
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")

    from tuning.policy import BanditPolicy, Objective, SearchSpace

    base, settings = load(args.config, args.overrides)
    sweep = SweepArgs(target_accuracy=args.target_accuracy, trials=args.trials, budget_usd=args.budget_usd)
    space = SearchSpace(lr_decays=settings.lr_decays, prune_ratios=settings.prune_ratios)
    objective = Objective(target_accuracy=sweep.target_accuracy, miss_penalty=settings.miss_penalty)
    base = train_cmd.resolve_names(base, started)
    train_cmd.preflight(base)
    sweep_dir = Path(base.output_dir)
    if sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise ConfigError(f"output_dir {sweep_dir} is not empty; choose another output_dir or run_name")
    splits, _ = data.load_splits(base.data)
    steps = epoch_steps(base, len(splits["train"]))

    ray = train_cmd.start_ray(args.address, base, extra_cpus=1)  # room for the trial's own sliver of a CPU
    from ray import tune

    from orchestrator.budget_tune import BudgetSearcher
    from orchestrator.tune_trial import TRIAL_CPUS, make_trainable
    from tuning.searcher import PolicySearcher

    use_gpu = train_cmd.decide_gpu(base.use_gpu, ray.cluster_resources().get("GPU", 0), base.num_workers)
    sweep_dir = sweep_dir.resolve()
    print(f"[spotfit] tune {base.run_name}: up to {sweep.trials} trial(s) over {len(space.arms)} arms "
          f"(lr_decay {list(space.lr_decays)} x prune {list(space.prune_ratios)}), target val accuracy {objective.target_accuracy}, "
          f"{base.num_workers} worker(s) on {'GPU' if use_gpu else 'CPU'} per trial"
          + (f", budget ${sweep.budget_usd:.2f}" if sweep.budget_usd else ""), flush=True)

    searcher = PolicySearcher(BanditPolicy(space, objective, seed=settings.seed))
    search_alg = BudgetSearcher(searcher, sweep.budget_usd, searcher.spent, prior_trial_usd=0.0) if sweep.budget_usd else searcher
    tuner = tune.Tuner(
        tune.with_resources(make_trainable(base, steps, use_gpu), {"CPU": TRIAL_CPUS}),
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=sweep.trials, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0,
                                  callbacks=[progress_callback(sweep.trials, objective.target_accuracy)]),
    )
    grid = tuner.fit()

    rows = trial_rows(grid, objective.target_accuracy)
    best = cheapest(rows)
    out = {
        "target_accuracy": objective.target_accuracy, "chosen_on": "validation accuracy",
        "space": {"lr_decays": list(space.lr_decays), "prune_ratios": list(space.prune_ratios)},
        "miss_penalty": objective.miss_penalty, "seed": settings.seed, "budget_usd": sweep.budget_usd,
        "budget_stop": getattr(search_alg, "stopped_reason", ""),
        "trials": rows, "best": best, "wall_seconds": time.time() - started, "config": to_dict(base),
    }
    (sweep_dir / "tune_results.json").write_text(json.dumps(out, indent=2))
    print(table(rows))
    if best:
        print(f"cheapest to {objective.target_accuracy} val accuracy: optim.lr_decay={best['lr_decay']:g} "
              f"prune.ratio={best['prune_ratio']:g} optim.epochs={best['epochs_to_target']} "
              f"(${best['usd_to_target']:.6f}, test accuracy {best['test_accuracy']:.4f})")
    else:
        print(f"no trial reached {objective.target_accuracy} val accuracy")
    print(sweep_dir)
    sys.stdout.flush()
    return 0


def progress_callback(total: int, target: float):
    """A Tune callback printing one line per finished trial (Tune's own tables are turned off)."""
    from ray.tune import Callback

    from tuning.searcher import outcome_from_result

    class Progress(Callback):
        done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            m = trial.last_result or {}
            if m.get("cost_usd") is None:
                return print(f"[spotfit] trial {self.done}/{total} {trial.trial_id}: no cost measured", flush=True)
            o = outcome_from_result(m, target, float(m["cost_usd"]))
            said = f"reached at epoch {o.epochs_to_target} (${o.usd_to_target:.6f})" if o.reached else "missed"
            print(f"[spotfit] trial {self.done}/{total} {trial.trial_id}: lr_decay {trial.config['lr_decay']:g} "
                  f"prune {trial.config['prune_ratio']:g} | val accuracy {o.accuracy:.4f} | ${m['cost_usd']:.6f} | {said}", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            self.done += 1
            print(f"[spotfit] trial {self.done}/{total} {trial.trial_id}: failed; its arm is not proposed again", flush=True)

    return Progress()
