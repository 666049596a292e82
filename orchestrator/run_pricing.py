"""What the train command asks about money: the run's $/h, its budget as a time limit, its cost.

Ray is touched only to read the driver's node (its labels and resources); the arithmetic is in
`budget.py`. A price that cannot be found never stops a run: it trains on without a cost.
"""
from __future__ import annotations

import dataclasses
import threading
import time

from pipeline.config import TrainConfig
from orchestrator import budget
from orchestrator.pricing import PriceUnavailable, instance_shape
from orchestrator.costs import NodeInfo, shares
from orchestrator.tracker import LABEL_TYPE, holdings_from_placement_groups


def node_shape(cfg: TrainConfig) -> tuple[float, float]:
    """(CPUs, GPUs) of a node priced by `cfg.cost`, as the tracker counts them: an unlabelled
    node (a laptop, a local Ray) by its Ray resources, otherwise the instance type's shape."""
    import ray

    me = ray.get_runtime_context().get_node_id()
    entry = next((n for n in ray.nodes() if n["NodeID"] == me), None)
    if entry is not None and LABEL_TYPE not in (entry.get("Labels") or {}):
        res = entry.get("Resources") or {}
        return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))
    shape = instance_shape(cfg.cost.instance_type)
    if shape:
        return float(shape["vcpus"]), float(shape["gpus"])
    res = ray.cluster_resources()
    return float(res.get("CPU", 1.0)), float(res.get("GPU", 0.0))


def price_run(cfg: TrainConfig, use_gpu: bool) -> tuple[TrainConfig, budget.RunRate | None]:
    """The run's rate, and `cfg` with its budget turned into `time_limit_s` (said in one line)."""
    cpus, gpus = node_shape(cfg)
    try:
        rate = budget.run_rate(cfg, use_gpu, cpus, gpus)
    except PriceUnavailable as exc:
        print(f"[spotfit] cost unknown: {exc}", flush=True)
        rate = None
    limit, line = budget.time_limit_for(cfg, rate)
    if line:
        print(line, flush=True)
    return dataclasses.replace(cfg, time_limit_s=limit), rate


class RunMeter:
    """Node-seconds this job's placement groups hold, polled from the GCS while the run trains.

    The wall time of `recipe.fit` would overcharge: Ray Train spends seconds starting its
    controller and worker group before the group holds anything, and tearing it down after."""

    def __init__(self, cfg: TrainConfig, interval_s: float = 0.2):
        import ray

        self.job = ray.get_runtime_context().get_job_id()
        cpus, gpus = node_shape(cfg)
        self.node = NodeInfo("", cfg.cost.instance_type, cfg.cost.market, cpus=cpus, gpus=gpus)
        self.interval_s = interval_s
        self.node_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="spotfit-run-meter")

    def _held_nodes(self) -> float:
        import ray

        held = holdings_from_placement_groups(ray.util.placement_group_table(), {})
        per_node: dict[str, dict] = {}
        for (node_id, owner), h in held.items():
            per_node.setdefault(node_id, {})[owner] = h
        return sum(shares(self.node, owners).get(next(o for o in owners if o.job == self.job), 0.0)
                   for owners in per_node.values() if any(o.job == self.job for o in owners))

    def _loop(self) -> None:
        last, held = time.time(), 0.0
        while True:
            stopping = self._stop.wait(self.interval_s)
            now = time.time()
            self.node_seconds += held * (now - last)  # what was held since the last poll
            last = now
            if stopping:
                return
            try:
                held = self._held_nodes()
            except Exception:  # metering is bookkeeping: a failed poll keeps the last figure
                pass

    def __enter__(self) -> "RunMeter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_cost_metrics(cfg: TrainConfig, rate: budget.RunRate | None, node_seconds: float, metrics: dict) -> dict:
    """cost_usd = node-seconds held x the node price; says so when the budget stopped the run."""
    out = budget.run_cost(rate, held_seconds=0.0)
    if rate is not None:
        out["cost_usd"] = rate.node_usd_per_hour * node_seconds / 3600.0
        out["node_seconds"] = node_seconds
    if cfg.budget_usd > 0 and metrics.get("stopped") == "time_limit":
        print(f"[spotfit] budget ${cfg.budget_usd:.2f} reached: stopped after {metrics.get('train_seconds', 0):.0f} s "
              f"of training, checkpoint kept", flush=True)
    return out
