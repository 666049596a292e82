"""`spotfit cost`: live spend per node, job and trial, and waste, from the cluster's cost tracker.

With `--ledger PATH` it replays a ledger file instead (no Ray needed): history after the fact.
"""
from __future__ import annotations

import json
import os
import time

from pipeline.config import ConfigError, CostConfig
from orchestrator.costs import CostBook
from orchestrator.ledger import DEFAULT_LEDGER, Ledger


def add_parser(sub) -> None:
    p = sub.add_parser("cost", help="show live cluster spend per job and trial", description="Show live spend: nodes, $/h, spend per job and trial, waste.")
    p.add_argument("--json", action="store_true", help="print the report as JSON, for scripts")
    p.add_argument("--address", default=None, help="Ray cluster (default: $RAY_ADDRESS, else auto)")
    p.add_argument("--start", action="store_true", help="start the tracker if none is running")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between the tracker's polls (with --start)")
    p.add_argument("--instance-type", default=CostConfig.instance_type, help="how to price nodes without spotfit labels (with --start)")
    p.add_argument("--price-per-hour", type=float, default=0.0, help="fixed $/h for unlabelled nodes (with --start; 0 = by instance type)")
    p.add_argument("--ledger", default=None, help="replay this ledger file instead of asking the tracker")
    p.add_argument("--watch", type=float, default=0.0, metavar="SECONDS", help="reprint every SECONDS until interrupted")
    p.set_defaults(run=run)


def _money(x: float) -> str:
    return f"${x:,.4f}"


def format_report(rep: dict) -> str:
    """The table `spotfit cost` prints."""
    lines = [f"spend {_money(rep['total_usd'])}   now {_money(rep['usd_per_hour'])}/h   "
             f"idle {_money(rep['idle_usd'])}   lost to preemption {_money(rep['preemption_loss_usd'])}", ""]
    lines.append(f"{'node':<14} {'type':<14} {'market':<10} {'$/h':>9} {'spend':>11} {'idle':>11}  source")
    for n in sorted(rep["nodes"], key=lambda n: (not n["alive"], n["instance_type"])):
        state = "" if n["alive"] else ("  (died)" if n["died"] else "  (gone)")
        lines.append(f"{n['node_id'][:12]:<14} {n['instance_type']:<14} {n['market']:<10} {n['usd_per_hour']:>9.4f} "
                     f"{n['spend_usd']:>11.4f} {n['idle_usd']:>11.4f}  {n['price_source']}{state}")
    lines += ["", f"{'job / trial':<30} {'$/h':>9} {'spend':>11} {'lost':>11}"]
    for j in sorted(rep["jobs"], key=lambda j: -j["spend_usd"]):
        lines.append(f"{j['job']:<30} {j['usd_per_hour']:>9.4f} {j['spend_usd']:>11.4f} {j['preemption_loss_usd']:>11.4f}")
        for t in j["trials"]:
            lines.append(f"  {t['trial']:<28} {t['usd_per_hour']:>9.4f} {t['spend_usd']:>11.4f} {t['preemption_loss_usd']:>11.4f}")
    if not rep["jobs"]:
        lines.append("(no job holds resources yet)")
    return "\n".join(lines)


def _from_ledger(path: str) -> dict:
    ledger = Ledger(path)
    if not ledger.path.exists():
        raise ConfigError(f"ledger {path} does not exist")
    book = CostBook()
    for event in ledger.read():
        book.apply(event)
    return book.report()


def _from_tracker(args):
    import ray

    from orchestrator import tracker

    if not ray.is_initialized():
        address = args.address or os.environ.get("RAY_ADDRESS") or "auto"
        try:
            ray.init(address=address, namespace=tracker.NAMESPACE, logging_level="ERROR", log_to_driver=False)
        except ConnectionError as exc:
            raise ConfigError(f"no Ray cluster at {address} ({exc}); pass --address or --ledger") from None
    handle = tracker.get_tracker()
    if handle is None:
        if not args.start:
            raise ConfigError("no cost tracker is running on this cluster; run `spotfit cost --start` once")
        cost = CostConfig(instance_type=args.instance_type, price_per_hour=args.price_per_hour)
        handle = tracker.start_tracker(cost, DEFAULT_LEDGER, interval_s=args.interval)
    return lambda: ray.get(handle.report.remote())


def run(args) -> int:
    fetch = (lambda: _from_ledger(args.ledger)) if args.ledger else _from_tracker(args)
    while True:
        rep = fetch()
        print(json.dumps(rep, indent=1) if args.json else format_report(rep), flush=True)
        if args.watch <= 0:
            return 0
        time.sleep(args.watch)
        print()
