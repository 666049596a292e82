"""One Tune trial: the train recipe with the trial's (lr_decay, prune_ratio), metered and priced.

Ray Train V2 runs inside Tune as a function trainable that calls `trainer.fit()` and then
`ray.tune.report(...)` (Ray 2.60: passing a Trainer to the Tuner is deprecated). The trial
itself only waits on `fit()`: Train's controller actor asks for 0 CPUs and the workers reserve
their CPUs/GPUs in a placement group of their own, so the trial reserves a sliver of a CPU
(`TRIAL_CPUS`; Tune refuses an all-zero request). Reserving a whole CPU would cost a node's worth
of CPU per concurrent trial and, on a 2-CPU machine, leave no room for the workers.

The cost is metered as `spotfit train` meters it (`run_pricing.RunMeter`: node-seconds held by
this job's placement groups). Trials share the sweep's job, so the sweep runs one trial at a
time (`tune_cmd`), which is also what a bandit wants: each trial's outcome informs the next.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

from pipeline.config import TrainConfig
from orchestrator import run_pricing

TRIAL_CPUS = 0.1


def epoch_ends(epoch_steps: list[int], max_steps: int) -> list[int]:
    """Optimizer step at which each epoch ends, the last one cut by `max_steps` (0 = no cap)."""
    ends = []
    for end in itertools.accumulate(epoch_steps):
        if max_steps and end >= max_steps:
            ends.append(max_steps)
            break
        ends.append(end)
    return ends


def trial_config(base: TrainConfig, params: dict, trial_id: str) -> TrainConfig:
    """The base config with the trial's arm; its own run name so no trial resumes another's checkpoint."""
    return dataclasses.replace(
        base,
        optim=dataclasses.replace(base.optim, lr_decay=float(params["lr_decay"])),
        prune=dataclasses.replace(base.prune, ratio=float(params["prune_ratio"])),
        run_name=f"{base.run_name}-{trial_id}",
        output_dir="",  # a trial's model stays in its final checkpoint (tune_results.json names it)
    )


def make_trainable(base: TrainConfig, epoch_steps: list[int], use_gpu: bool) -> Callable[[dict], None]:
    """The function Tune runs per trial (shipped to a trial actor: it closes over plain data only)."""

    def trial(params: dict) -> None:
        import ray.tune

        from pipeline import recipe  # imports Ray Train; only inside the trial actor

        cfg = trial_config(base, params, ray.tune.get_context().get_trial_id())
        cfg, rate = run_pricing.price_run(cfg, use_gpu)
        with run_pricing.RunMeter(cfg) as meter:
            result = recipe.fit(cfg, use_gpu)
        m = result.metrics
        curve = list(m.get("val_accuracy") or [])
        report = {
            "val_accuracy_per_epoch": curve,
            "val_accuracy": curve[-1] if curve else 0.0,
            "epoch_end_steps": epoch_ends(epoch_steps, cfg.optim.max_steps)[: len(curve)],
            "step": m.get("step", 0),
            "test_accuracy": m.get("test_accuracy"),
            "train_seconds": m.get("train_seconds"),
            "stopped": m.get("stopped"),
            "sparsity": m.get("sparsity"),
            "checkpoint": result.checkpoint.path if result.checkpoint else "",
        }
        report.update(run_pricing.run_cost_metrics(cfg, rate, meter.node_seconds, m))
        ray.tune.report(report)

    return trial
