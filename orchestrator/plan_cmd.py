"""`spotfit plan`: expected dollars and wall time for a job on spot vs on-demand, with the
checkpoint interval that minimises them."""
from __future__ import annotations

import datetime as dt
import json
import math

from orchestrator import planning
from orchestrator.pricing import PriceBook, PriceUnavailable, fetch_spot_history
from pipeline.config import ConfigError

# An assumption, not a measurement: AWS's Spot Instance Advisor puts most GPU types in its
# "<5%" to "10-15%" interruption bands per month; jobs that hold nodes for hours see more.
# One interruption per 20 hours is a middle figure; pass the rate you observe.
DEFAULT_INTERRUPTIONS_PER_HOUR = 0.05


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="estimate dollars and wall time for a job", description=__doc__)
    p.add_argument("--instance", required=True, help="EC2 instance type, e.g. g5.xlarge")
    p.add_argument("--market", choices=["spot", "on-demand"], default="spot", help="the market to plan for (both are shown)")
    p.add_argument("--hours", type=float, required=True, help="hours of work the job needs on one node, uninterrupted")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0, help="seconds one checkpoint takes")
    p.add_argument("--restart-seconds", type=float, default=300.0, help="seconds from an interruption to training again (new node, restore)")
    p.add_argument("--interruptions-per-hour", type=float, default=DEFAULT_INTERRUPTIONS_PER_HOUR, help="spot interruption rate (an assumption; default 0.05 = one per 20 h)")
    p.add_argument("--history-days", type=float, default=7.0, help="average the spot price over this many past days when AWS can be asked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _spot_price(book: PriceBook, instance: str, region: str, days: float) -> tuple[float, str]:
    """Time-weighted mean of the spot price history; the current (maybe stale) price without AWS."""
    if not book.offline:
        try:
            from botocore.exceptions import BotoCoreError, ClientError

            end = dt.datetime.now(dt.timezone.utc)
            hist = fetch_spot_history(book.clients.ec2(region), instance, end - dt.timedelta(days=days), end)
            if hist:
                # Each zone has its own history; plan on the cheapest zone's mean, where spot requests go.
                zones = {z for _, z, _ in hist}
                t0, t1 = (end - dt.timedelta(days=days)).timestamp(), end.timestamp()
                means = {z: planning.time_weighted_mean([(t.timestamp(), p) for t, zz, p in hist if zz == z], t0, t1) for z in zones}
                zone = min(means, key=means.get)
                return means[zone], f"aws-spot-api {days:g}-day mean, {zone}"
        except (BotoCoreError, ClientError, OSError):
            pass
    p = book.price(instance, "spot", region)
    return p.usd_per_hour, p.label


def run(args) -> int:
    book = PriceBook()
    try:
        od_price = book.price(args.instance, "on-demand", args.region)
        spot_usd, spot_source = _spot_price(book, args.instance, args.region, args.history_days)
    except PriceUnavailable as exc:
        raise ConfigError(str(exc)) from None
    common = dict(work_hours=args.hours, checkpoint_s=args.checkpoint_seconds, restart_s=args.restart_seconds)
    plans = [
        planning.plan("spot", spot_usd, spot_source, interruptions_per_hour=args.interruptions_per_hour, **common),
        # On-demand capacity is not reclaimed: no interruption term.
        planning.plan("on-demand", od_price.usd_per_hour, od_price.label, interruptions_per_hour=0.0, **common),
    ]
    chosen = next(p for p in plans if p.market == args.market)
    cheapest = min(plans, key=lambda p: p.cost_usd)
    if args.json:
        print(json.dumps({"plans": [p.__dict__ for p in plans], "chosen": args.market, "cheapest": cheapest.market},
                         default=lambda x: None if isinstance(x, float) and math.isinf(x) else x, indent=1))
        return 0
    print(f"{args.instance}, {args.hours:g} h of work, {args.interruptions_per_hour:g} spot interruptions/h, "
          f"checkpoint {args.checkpoint_seconds:g} s, restart {args.restart_seconds:g} s")
    print(f"{'market':<10} {'$/h':>9} {'wall h':>8} {'cost $':>10} {'ckpt every':>11}  price")
    for p in plans:
        every = "at end" if p.interval_s >= args.hours * 3600 else f"{p.interval_s / 60:.1f} min"
        print(f"{p.market:<10} {p.usd_per_hour:>9.4f} {p.wall_s / 3600:>8.2f} {p.cost_usd:>10.2f} {every:>11}  {p.price_source}")
    if math.isfinite(plans[0].young_daly_s):
        print(f"spot checkpoint interval: {plans[0].interval_s / 60:.1f} min (Young/Daly sqrt(2*C*MTBF) = {plans[0].young_daly_s / 60:.1f} min)")
    saving = 1 - cheapest.cost_usd / max(p.cost_usd for p in plans)
    print(f"{args.market}: ${chosen.cost_usd:.2f} in {chosen.wall_s / 3600:.2f} h; cheapest is {cheapest.market} ({saving:.0%} less)")
    return 0
