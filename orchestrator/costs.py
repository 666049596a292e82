"""Cost integration: node-hours times price, attributed to jobs and trials. Pure; no Ray here.

Everything that happens is an event (a plain dict, so the ledger can store it as one JSON line):

    node_up     a node joined, with its instance type, market, CPUs, GPUs and $/h
    price       a node's $/h changed (spot prices move)
    hold        an owner (Ray job, optionally Tune trial) now holds cpus/gpus on a node
    checkpoint  an owner saved a checkpoint (bounds what a preemption destroys)
    node_down   a node left; `died` means it went unexpectedly (preempted, crashed)
    tick        nothing changed; integrate up to t

`CostBook.apply(event)` first integrates the state that held since the last event up to the
event's time, then applies it. Between events everything is constant, so the integral is exact
for the piecewise-constant prices and holdings it was told about: spend is the sum of
price x duration over the pieces, never the last price times the whole duration.

Attribution. An owner's share of a node is its dominant share, max(cpus/node_cpus,
gpus/node_gpus): a job holding the only GPU of a g5.xlarge with one of its four CPUs pays for
the node, as the GPU is what the node is bought for. If the shares on a node add up to more
than one they are scaled down to one. What no one holds is waste ("idle").

Preemption loss. When a node dies, every owner that held part of it loses the work since its
last checkpoint: all of its spend since then, on every node (a DDP run restarts as a whole).
That spend is already in the owner's line; `preemption_loss` says how much of it bought nothing.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    instance_type: str
    market: str
    cpus: float
    gpus: float = 0.0
    zone: str = ""
    region: str = ""


@dataclass(frozen=True, order=True)
class Owner:
    job: str
    trial: str = ""

    @property
    def key(self) -> str:
        return f"{self.job}/{self.trial}" if self.trial else self.job


@dataclass
class _Node:
    info: NodeInfo
    usd_per_hour: float
    price_source: str
    up_at: float
    down_at: float | None = None
    died: bool = False
    spend: float = 0.0
    idle: float = 0.0
    holdings: dict[Owner, tuple[float, float]] = field(default_factory=dict)


def shares(node: NodeInfo, holdings: dict[Owner, tuple[float, float]]) -> dict[Owner, float]:
    """Each owner's share of the node's price (dominant resource share, summing to at most 1)."""
    raw = {}
    for owner, (cpus, gpus) in holdings.items():
        by_cpu = cpus / node.cpus if node.cpus > 0 else 0.0
        by_gpu = gpus / node.gpus if node.gpus > 0 else 0.0
        raw[owner] = max(by_cpu, by_gpu)
    total = sum(raw.values())
    if total > 1.0:
        raw = {owner: s / total for owner, s in raw.items()}
    return raw


class CostBook:
    """Integrates events into spend per node, owner, job and trial, idle waste and preemption loss."""

    def __init__(self) -> None:
        self.t: float | None = None
        self.nodes: dict[str, _Node] = {}
        self.owner_spend: dict[Owner, float] = defaultdict(float)
        self.owner_first_seen: dict[Owner, float] = {}
        self._since_checkpoint: dict[Owner, float] = defaultdict(float)
        self.last_checkpoint: dict[Owner, float] = {}
        self.preemption_loss = 0.0
        self.preemption_by_owner: dict[Owner, float] = defaultdict(float)

    # -- events ---------------------------------------------------------------------------------

    def apply(self, event: dict) -> None:
        t = float(event["t"])
        self.advance(t)
        kind = event["kind"]
        if kind == "node_up":
            info = NodeInfo(**event["node"])
            self.nodes[info.node_id] = _Node(info, float(event["usd_per_hour"]), event.get("source", ""), up_at=t)
        elif kind == "price":
            node = self._live(event["node_id"])
            node.usd_per_hour, node.price_source = float(event["usd_per_hour"]), event.get("source", node.price_source)
        elif kind == "hold":
            node = self._live(event["node_id"])
            owner = Owner(**event["owner"])
            cpus, gpus = float(event.get("cpus", 0)), float(event.get("gpus", 0))
            if cpus <= 0 and gpus <= 0:
                node.holdings.pop(owner, None)
            else:
                node.holdings[owner] = (cpus, gpus)
                self.owner_first_seen.setdefault(owner, t)
        elif kind == "checkpoint":
            owner = Owner(**event["owner"])
            self.last_checkpoint[owner] = t
            self._since_checkpoint[owner] = 0.0
        elif kind == "node_down":
            node = self._live(event["node_id"])
            node.down_at, node.died = t, bool(event.get("died", False))
            if node.died:
                for owner in node.holdings:
                    lost = self._since_checkpoint.pop(owner, 0.0)
                    self.preemption_loss += lost
                    self.preemption_by_owner[owner] += lost
            node.holdings = {}
        elif kind != "tick":
            raise ValueError(f"unknown cost event kind {kind!r}")

    def advance(self, t: float) -> None:
        if self.t is None:
            self.t = t
            return
        # Events come from one poller and a ledger written in order; going back is a bug.
        assert t >= self.t - 1e-9, f"cost events out of order: {t} < {self.t}"
        dt = max(0.0, t - self.t)
        if dt > 0:
            for node in self.nodes.values():
                if node.down_at is not None:
                    continue
                cost = node.usd_per_hour * dt / SECONDS_PER_HOUR
                node.spend += cost
                node_shares = shares(node.info, node.holdings)
                for owner, share in node_shares.items():
                    self.owner_spend[owner] += cost * share
                    self._since_checkpoint[owner] += cost * share
                node.idle += cost * (1.0 - sum(node_shares.values()))
        self.t = t

    def _live(self, node_id: str) -> _Node:
        node = self.nodes.get(node_id)
        if node is None or node.down_at is not None:
            raise KeyError(f"node {node_id} is not up")
        return node

    # -- views ----------------------------------------------------------------------------------

    def live_nodes(self) -> dict[str, _Node]:
        return {nid: n for nid, n in self.nodes.items() if n.down_at is None}

    def owner_rate(self, owner: Owner) -> float:
        """The owner's $/h right now, over every node it holds part of."""
        return sum(n.usd_per_hour * shares(n.info, n.holdings).get(owner, 0.0) for n in self.live_nodes().values())

    def job_spend(self, job: str) -> float:
        return sum(v for o, v in self.owner_spend.items() if o.job == job)

    def report(self) -> dict:
        """Everything `spotfit cost --json` prints; plain types only."""
        jobs: dict[str, dict] = {}
        for owner, spend in sorted(self.owner_spend.items()):
            row = jobs.setdefault(owner.job, {"job": owner.job, "spend_usd": 0.0, "usd_per_hour": 0.0, "preemption_loss_usd": 0.0, "trials": []})
            row["spend_usd"] += spend
            row["usd_per_hour"] += self.owner_rate(owner)
            row["preemption_loss_usd"] += self.preemption_by_owner.get(owner, 0.0)
            if owner.trial:
                row["trials"].append({"trial": owner.trial, "spend_usd": spend, "usd_per_hour": self.owner_rate(owner),
                                      "preemption_loss_usd": self.preemption_by_owner.get(owner, 0.0),
                                      "last_checkpoint": self.last_checkpoint.get(owner)})
        nodes = [
            {**asdict(n.info), "usd_per_hour": n.usd_per_hour, "price_source": n.price_source, "alive": n.down_at is None,
             "died": n.died, "up_at": n.up_at, "down_at": n.down_at, "spend_usd": n.spend, "idle_usd": n.idle}
            for n in self.nodes.values()
        ]
        total = sum(n.spend for n in self.nodes.values())
        idle = sum(n.idle for n in self.nodes.values())
        return {
            "t": self.t,
            "total_usd": total,
            "usd_per_hour": sum(n.usd_per_hour for n in self.live_nodes().values()),
            "idle_usd": idle,
            "preemption_loss_usd": self.preemption_loss,
            "nodes": nodes,
            "jobs": list(jobs.values()),
        }


# ---------------------------------------------------------------------------------------------
# From a poll of the cluster to events: what changed since the book last heard.


@dataclass(frozen=True)
class PolledNode:
    info: NodeInfo
    usd_per_hour: float
    price_source: str


def reconcile(book: CostBook, t: float, polled: list[PolledNode], holdings: dict[tuple[str, Owner], tuple[float, float]],
              died: set[str] = frozenset(), gone_at: float | None = None) -> list[dict]:
    """Events that bring `book` in line with a poll at time t.

    `polled` are the live nodes; a live node of the book missing from it has left, and it died
    if its id is in `died`. `gone_at` dates those departures earlier than t: after a tracker
    restart the last the ledger knew of a node is its last record, not now.
    """
    events: list[dict] = []
    live = book.live_nodes()
    seen = {p.info.node_id for p in polled}
    for node_id in sorted(set(live) - seen):
        events.append({"t": gone_at if gone_at is not None else t, "kind": "node_down", "node_id": node_id, "died": node_id in died})
    for p in polled:
        nid = p.info.node_id
        if nid not in live:
            events.append({"t": t, "kind": "node_up", "node": asdict(p.info), "usd_per_hour": p.usd_per_hour, "source": p.price_source})
        elif live[nid].usd_per_hour != p.usd_per_hour or live[nid].price_source != p.price_source:
            events.append({"t": t, "kind": "price", "node_id": nid, "usd_per_hour": p.usd_per_hour, "source": p.price_source})
    before = {(nid, o): h for nid, n in live.items() if nid in seen for o, h in n.holdings.items()}
    for (nid, owner) in sorted(set(before) | set(holdings)):
        if nid not in seen:
            continue
        now = holdings.get((nid, owner), (0.0, 0.0))
        if before.get((nid, owner), (0.0, 0.0)) != now:
            events.append({"t": t, "kind": "hold", "node_id": nid, "owner": asdict(owner), "cpus": now[0], "gpus": now[1]})
    if not events:
        events.append({"t": t, "kind": "tick"})
    return events
