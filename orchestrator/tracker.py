"""The cost tracker on Ray: a named, detached actor that polls the cluster and feeds a CostBook.

Ray is touched here only: `ray.nodes()` for live nodes and their labels, the GCS placement
group table for who holds what, `ray.util.metrics` gauges for the dashboard. The integration
itself is `costs.CostBook`; what turns a Ray node entry into a priced node is `node_info`.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

from pipeline.config import CostConfig
from orchestrator.costs import CostBook, NodeInfo, Owner, PolledNode, reconcile
from orchestrator.ledger import DEFAULT_LEDGER, Ledger
from orchestrator.pricing import PriceBook, PriceUnavailable

log = logging.getLogger(__name__)

ACTOR_NAME = "spotfit_cost_tracker"
NAMESPACE = "spotfit"
# Node labels that cluster.yaml sets per node type.
LABEL_TYPE, LABEL_MARKET, LABEL_ZONE, LABEL_REGION = "spotfit/instance-type", "spotfit/market", "spotfit/zone", "spotfit/region"
# NodeDeathInfo.Reason: 2 UNEXPECTED_TERMINATION, 3 AUTOSCALER_DRAIN_PREEMPTED lose work;
# 1 EXPECTED_TERMINATION and 4 AUTOSCALER_DRAIN_IDLE are clean exits.
DIED_REASONS = {2, 3, "UNEXPECTED_TERMINATION", "AUTOSCALER_DRAIN_PREEMPTED"}
# A tick costs a ledger line; one every 30 s bounds how much a restart can misdate.
LEDGER_TICK_S = 30.0


def node_info(entry: dict, cost: CostConfig) -> NodeInfo:
    """A `ray.nodes()` entry as a NodeInfo; unlabelled nodes are priced as `cost` says."""
    labels = entry.get("Labels") or {}
    res = entry.get("Resources") or {}
    zone = labels.get(LABEL_ZONE, "")
    return NodeInfo(
        node_id=entry["NodeID"],
        instance_type=labels.get(LABEL_TYPE, cost.instance_type),
        market=labels.get(LABEL_MARKET, cost.market),
        cpus=float(res.get("CPU", 0.0)),
        gpus=float(res.get("GPU", 0.0)),
        zone=zone,
        region=labels.get(LABEL_REGION, "") or (zone[:-1] if zone else cost.region),
    )


def price_node(info: NodeInfo, labelled: bool, cost: CostConfig, prices: PriceBook) -> tuple[float, str]:
    if not labelled and cost.price_per_hour > 0:
        return cost.price_per_hour, "configured"
    try:
        p = prices.price(info.instance_type, info.market, info.region, info.zone)
        return p.usd_per_hour, p.label
    except PriceUnavailable as exc:
        # Never stop over a price: count the node's time at $0 and say so in the source.
        log.warning("spotfit: %s", exc)
        return 0.0, "unavailable"


def holdings_from_placement_groups(table: dict, trial_of: dict[str, str]) -> dict[tuple[str, Owner], tuple[float, float]]:
    """{(node_id, owner): (cpus, gpus)} from `ray.util.placement_group_table()`.

    A placement group id ends in the id of the job that made it (8 hex digits), which is how a
    group is charged to its job; `trial_of` maps group ids to Tune trials (see `tag`)."""
    out: dict[tuple[str, Owner], tuple[float, float]] = {}
    for pg_id, pg in table.items():
        if pg.get("state") != "CREATED":
            continue
        owner = Owner(job=pg_id[-8:], trial=trial_of.get(pg_id, ""))
        for idx, resources in pg.get("bundles", {}).items():
            node_id = pg.get("bundles_to_node_id", {}).get(idx)
            if not node_id:
                continue
            cpus, gpus = out.get((node_id, owner), (0.0, 0.0))
            out[(node_id, owner)] = (cpus + float(resources.get("CPU", 0.0)), gpus + float(resources.get("GPU", 0.0)))
    return out


def gauge_rows(report: dict) -> list[tuple[str, float, dict[str, str]]]:
    """(gauge, value, tags) for everything the dashboard shows."""
    rows: list[tuple[str, float, dict[str, str]]] = [
        ("spotfit_spend_usd_total", report["total_usd"], {}),
        ("spotfit_usd_per_hour_total", report["usd_per_hour"], {}),
        ("spotfit_waste_usd", report["idle_usd"], {"kind": "idle"}),
        ("spotfit_waste_usd", report["preemption_loss_usd"], {"kind": "preemption"}),
    ]
    by_type: dict[tuple[str, str], list[float]] = {}
    for n in report["nodes"]:
        acc = by_type.setdefault((n["instance_type"], n["market"]), [0.0, 0.0])
        acc[0] += n["spend_usd"]
        acc[1] += n["usd_per_hour"] if n["alive"] else 0.0
    for (node_type, market), (spend, rate) in sorted(by_type.items()):
        tags = {"node_type": node_type, "market": market}
        rows += [("spotfit_node_spend_usd", spend, tags), ("spotfit_node_usd_per_hour", rate, tags)]
    for job in report["jobs"]:
        rows += [("spotfit_job_spend_usd", job["spend_usd"], {"job": job["job"], "trial": ""}),
                 ("spotfit_job_usd_per_hour", job["usd_per_hour"], {"job": job["job"], "trial": ""})]
        for trial in job["trials"]:
            tags = {"job": job["job"], "trial": trial["trial"]}
            rows += [("spotfit_job_spend_usd", trial["spend_usd"], tags), ("spotfit_job_usd_per_hour", trial["usd_per_hour"], tags)]
    return rows


_GAUGE_TAGS = {
    "spotfit_spend_usd_total": (), "spotfit_usd_per_hour_total": (), "spotfit_waste_usd": ("kind",),
    "spotfit_node_spend_usd": ("node_type", "market"), "spotfit_node_usd_per_hour": ("node_type", "market"),
    "spotfit_job_spend_usd": ("job", "trial"), "spotfit_job_usd_per_hour": ("job", "trial"),
}


class _Tracker:
    """The actor's body (wrapped by ray.remote in `start_tracker`)."""

    def __init__(self, cost: dict, ledger_path: str, interval_s: float, offline: bool | None = None):
        import ray  # noqa: F401  (runs inside the actor)

        self.cost = CostConfig(**cost)
        self.prices = PriceBook(offline=offline)
        self.ledger = Ledger(ledger_path)
        self.interval_s = interval_s
        self.book = CostBook()
        for event in self.ledger.read():
            self.book.apply(event)
        # Nodes the ledger had up and the first poll no longer sees left while we were away;
        # the last we know of them is the ledger's last record.
        self._gone_at = self.book.t
        self._trial_of: dict[str, str] = {}
        self._labelled: dict[str, bool] = {}
        self._last_ledger_t = self.book.t or 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._gauges: dict = {}
        self.poll()
        threading.Thread(target=self._loop, daemon=True, name="spotfit-cost-poll").start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:  # a failed poll must not end the tracker; the next one catches up
                log.exception("spotfit: cost poll failed")

    def poll(self) -> int:
        import ray

        t = time.time()
        polled, died = [], set()
        for entry in ray.nodes():
            if not entry.get("Alive"):
                if entry.get("DeathReason") in DIED_REASONS:
                    died.add(entry["NodeID"])
                continue
            info = node_info(entry, self.cost)
            labelled = LABEL_TYPE in (entry.get("Labels") or {})
            usd, source = price_node(info, labelled, self.cost, self.prices)
            polled.append(PolledNode(info, usd, source))
        holdings = holdings_from_placement_groups(ray.util.placement_group_table(), self._trial_of)
        with self._lock:
            events = reconcile(self.book, t, polled, holdings, died, gone_at=self._gone_at)
            self._gone_at = None
            for event in events:
                self.book.apply(event)
            real = [e for e in events if e["kind"] != "tick"]
            if real or t - self._last_ledger_t >= LEDGER_TICK_S:
                self.ledger.append(real or events)
                self._last_ledger_t = t
            report = self.book.report()
        self._export(report)
        return len(events)

    def _export(self, report: dict) -> None:
        from ray.util.metrics import Gauge

        for name, value, tags in gauge_rows(report):
            if name not in self._gauges:
                self._gauges[name] = Gauge(name, description=f"spotfit cost tracker: {name}", tag_keys=_GAUGE_TAGS[name])
            self._gauges[name].set(value, tags=tags or None)

    def report(self) -> dict:
        with self._lock:
            return self.book.report()

    def tag(self, placement_group_id: str, trial: str) -> None:
        """Charge a placement group to a Tune trial (from then on)."""
        self._trial_of[placement_group_id] = trial

    def checkpoint(self, job: str, trial: str = "") -> None:
        with self._lock:
            self.book.apply({"t": max(time.time(), self.book.t or 0.0), "kind": "checkpoint", "owner": {"job": job, "trial": trial}})
            self.ledger.append([{"t": self.book.t, "kind": "checkpoint", "owner": {"job": job, "trial": trial}}])

    def stop(self) -> None:
        self._stop.set()


def start_tracker(cost: CostConfig | None = None, ledger_path: str | Path = DEFAULT_LEDGER, interval_s: float = 5.0, offline: bool | None = None):
    """The cluster's tracker, started if it is not running (needs `ray.init` first)."""
    import ray

    actor = ray.remote(num_cpus=0, max_concurrency=4)(_Tracker)
    return actor.options(name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True).remote(
        dataclasses.asdict(cost or CostConfig()), str(ledger_path), interval_s, offline)


def get_tracker():
    """The running tracker, or None."""
    import ray

    try:
        return ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return None


def tag_current_placement_group(trial: str) -> bool:
    """Called inside a Tune trial: charge the placement group it runs in to `trial`."""
    import ray

    pg, tracker = ray.util.get_current_placement_group(), get_tracker()
    if pg is None or tracker is None:
        return False
    ray.get(tracker.tag.remote(pg.id.hex(), trial))
    return True


def report_checkpoint(trial: str = "") -> None:
    """Called after a checkpoint is saved: bounds what a preemption of this run can destroy."""
    import ray

    tracker = get_tracker()
    if tracker is not None:
        tracker.checkpoint.remote(ray.get_runtime_context().get_job_id(), trial)  # fire and forget
