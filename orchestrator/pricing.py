"""Hourly prices of EC2 instances: live from AWS, cached on disk, a shipped snapshot when offline.

One question, `PriceBook.price(instance_type, market, region, zone)`, answered from, in order:
a fresh disk cache entry, the AWS API (spot: `ec2.describe_spot_price_history`, on-demand: the
`pricing` API), an old cache entry, the snapshot in `price_snapshot.json`. The last two are
marked stale. A price is bookkeeping: no AWS error (no credentials, throttled, timed out,
unknown type) propagates out of `price()`; only a type that no source knows raises
`PriceUnavailable`, which callers turn into "cost unknown", never into a failed run.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

log = logging.getLogger(__name__)

Market = Literal["spot", "on-demand"]
SNAPSHOT_PATH = Path(__file__).with_name("price_snapshot.json")
DEFAULT_CACHE = Path(os.environ.get("SPOTFIT_PRICE_CACHE", Path.home() / ".cache" / "spotfit" / "prices.json"))

# The pricing API answers only from a few regions; us-east-1 serves every region's prices.
PRICING_API_REGION = "us-east-1"
# Spot prices move at most a few times an hour; list prices a few times a year.
SPOT_TTL_S = 300.0
ON_DEMAND_TTL_S = 7 * 24 * 3600.0
# After a failed call, don't ask again for this long: a tracker polling every few seconds
# must not turn one missing credential into a stream of 5 s timeouts.
RETRY_AFTER_S = 600.0

# Display names the pricing API filters on; regionCode exists too, but location is what every
# price list item carries, so both are sent.
_REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)",
    "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-southeast-1": "Asia Pacific (Singapore)",
}


class PriceUnavailable(LookupError):
    """No source, live, cached or shipped, knows a price for this instance type."""


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str
    """aws-spot-api, aws-pricing-api, snapshot or configured."""
    read_at: float
    """Unix time the figure was read from its source (the snapshot's date for the snapshot)."""
    stale: bool = False
    """True when the live source could not be asked and an old figure stands in."""
    zone: str = ""

    @property
    def label(self) -> str:
        return f"{self.source} (stale)" if self.stale else self.source


def region_of_zone(zone: str) -> str:
    """us-east-1a -> us-east-1 (an availability zone is its region plus one letter)."""
    return zone[:-1] if zone and zone[-1].isalpha() else zone


# ---------------------------------------------------------------------------------------------
# The two AWS calls: plain functions over a boto3 client, so tests hand them real clients
# pointed at moto or wrapped in a Stubber.


def fetch_spot_prices(ec2: Any, instance_type: str, zone: str = "", at: dt.datetime | None = None) -> dict[str, tuple[float, dt.datetime]]:
    """Latest Linux spot price per availability zone: {zone: (usd_per_hour, timestamp)}."""
    at = at or dt.datetime.now(dt.timezone.utc)
    # StartTime = EndTime = now asks for the price in effect now in each zone.
    kwargs: dict[str, Any] = dict(InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=at, EndTime=at)
    if zone:
        kwargs["Filters"] = [{"Name": "availability-zone", "Values": [zone]}]
    latest: dict[str, tuple[float, dt.datetime]] = {}
    for page in ec2.get_paginator("describe_spot_price_history").paginate(**kwargs):
        for rec in page.get("SpotPriceHistory", []):
            if rec["InstanceType"] != instance_type or not rec["ProductDescription"].startswith("Linux/UNIX"):
                continue
            z, ts, usd = rec["AvailabilityZone"], rec["Timestamp"], float(rec["SpotPrice"])
            if z not in latest or ts > latest[z][1]:
                latest[z] = (usd, ts)
    return latest


def fetch_spot_history(ec2: Any, instance_type: str, start: dt.datetime, end: dt.datetime, zone: str = "") -> list[tuple[dt.datetime, str, float]]:
    """Every Linux spot price change in [start, end]: [(timestamp, zone, usd_per_hour)], oldest first."""
    kwargs: dict[str, Any] = dict(InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=start, EndTime=end)
    if zone:
        kwargs["Filters"] = [{"Name": "availability-zone", "Values": [zone]}]
    out = []
    for page in ec2.get_paginator("describe_spot_price_history").paginate(**kwargs):
        for rec in page.get("SpotPriceHistory", []):
            if rec["InstanceType"] == instance_type and rec["ProductDescription"].startswith("Linux/UNIX"):
                out.append((rec["Timestamp"], rec["AvailabilityZone"], float(rec["SpotPrice"])))
    return sorted(out, key=lambda r: r[0])


def fetch_on_demand_price(pricing: Any, instance_type: str, region: str) -> float:
    """On-demand Linux, shared-tenancy, no-licence $/h from the AWS Price List API."""
    filters = [
        ("instanceType", instance_type), ("regionCode", region), ("operatingSystem", "Linux"),
        ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"),
    ]
    if region in _REGION_NAMES:
        filters.append(("location", _REGION_NAMES[region]))
    request = dict(ServiceCode="AmazonEC2", Filters=[{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters])
    prices = set()
    for page in pricing.get_paginator("get_products").paginate(**request):
        for item in page.get("PriceList", []):
            product = json.loads(item) if isinstance(item, str) else item
            for term in product.get("terms", {}).get("OnDemand", {}).values():
                for dim in term.get("priceDimensions", {}).values():
                    usd = float(dim.get("pricePerUnit", {}).get("USD", "0"))
                    if dim.get("unit") == "Hrs" and usd > 0:
                        prices.add(usd)
    if not prices:
        raise PriceUnavailable(f"the AWS pricing API lists no on-demand Linux price for {instance_type} in {region}")
    # The filters above should leave one SKU; if AWS lists variants, the cheapest is the plain one.
    return min(prices)


# ---------------------------------------------------------------------------------------------
# Disk cache and snapshot.


def _key(market: str, region: str, zone: str, instance_type: str) -> str:
    return f"{market}|{region}|{zone}|{instance_type}"


class PriceCache:
    """A JSON file {key: {usd_per_hour, source, read_at, zone}}; written whole, atomically."""

    def __init__(self, path: str | Path = DEFAULT_CACHE):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict | None:
        return self.load().get(key)

    def put(self, key: str, price: Price) -> None:
        entries = self.load()
        entries[key] = {"usd_per_hour": price.usd_per_hour, "source": price.source, "read_at": price.read_at, "zone": price.zone}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
            tmp.replace(self.path)
        except OSError as exc:  # a read-only home must not stop pricing
            log.warning("spotfit: cannot write price cache %s: %s", self.path, exc)


def load_snapshot(path: str | Path = SNAPSHOT_PATH) -> dict:
    return json.loads(Path(path).read_text())


def snapshot_price(snapshot: dict, instance_type: str, market: str, region: str) -> Price | None:
    table = snapshot["on_demand" if market == "on-demand" else "spot"].get(region, {})
    if instance_type not in table:
        return None
    taken = dt.datetime.fromisoformat(snapshot["taken"]).replace(tzinfo=dt.timezone.utc).timestamp()
    return Price(float(table[instance_type]), "snapshot", taken, stale=True)


def instance_shape(instance_type: str, snapshot: dict | None = None) -> dict | None:
    """{"vcpus": n, "gpus": n} for the instance types the snapshot lists, else None."""
    snapshot = snapshot or load_snapshot()
    return snapshot.get("instances", {}).get(instance_type)


# ---------------------------------------------------------------------------------------------


class AwsClients:
    """boto3 clients made on first use, with short timeouts: a price lookup must not hang a poll."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Any] = {}

    def _make(self, service: str, region: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # boto3 is a dependency; this only bites a broken install
            raise RuntimeError("live AWS prices need boto3: pip install boto3") from exc
        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
        return boto3.client(service, region_name=region, config=config)

    def _get(self, service: str, region: str) -> Any:
        if (service, region) not in self._clients:
            self._clients[(service, region)] = self._make(service, region)
        return self._clients[(service, region)]

    def ec2(self, region: str) -> Any:
        return self._get("ec2", region)

    def pricing(self) -> Any:
        return self._get("pricing", PRICING_API_REGION)


class PriceBook:
    """Prices with fallbacks. `clients` needs `ec2(region)` and `pricing()` returning boto3 clients."""

    def __init__(
        self,
        cache: PriceCache | None = None,
        clients: Any = None,
        snapshot: dict | None = None,
        offline: bool | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.cache = cache or PriceCache()
        self.clients = clients or AwsClients()
        self.snapshot = snapshot or load_snapshot()
        # SPOTFIT_PRICES=offline: never call AWS (air-gapped clusters, CI).
        self.offline = os.environ.get("SPOTFIT_PRICES") == "offline" if offline is None else offline
        self.clock = clock
        self._failed_at: dict[str, float] = {}
        self.last_error: dict[str, str] = {}

    def price(self, instance_type: str, market: Market = "on-demand", region: str = "us-east-1", zone: str = "") -> Price:
        if market not in ("spot", "on-demand"):
            raise ValueError(f"market must be spot or on-demand, got {market!r}")
        region = region or region_of_zone(zone) or "us-east-1"
        # On-demand prices are per region; keying them by zone would only multiply API calls.
        zone = zone if market == "spot" else ""
        key = _key(market, region, zone, instance_type)
        now = self.clock()
        ttl = SPOT_TTL_S if market == "spot" else ON_DEMAND_TTL_S
        cached = self.cache.get(key)
        if cached and now - cached["read_at"] < ttl:
            return Price(cached["usd_per_hour"], cached["source"], cached["read_at"], stale=False, zone=cached.get("zone", ""))
        live = self._ask_aws(instance_type, market, region, zone, now)
        if live is not None:
            self.cache.put(key, live)
            return live
        if cached:
            return Price(cached["usd_per_hour"], cached["source"], cached["read_at"], stale=True, zone=cached.get("zone", ""))
        shipped = snapshot_price(self.snapshot, instance_type, market, region)
        if shipped is not None:
            return shipped
        raise PriceUnavailable(
            f"no {market} price for {instance_type} in {region}: AWS could not be asked "
            f"({self.last_error.get(market, 'offline')}) and neither the cache nor the snapshot lists it; "
            f"set cost.price_per_hour"
        )

    def _ask_aws(self, instance_type: str, market: str, region: str, zone: str, now: float) -> Price | None:
        key = _key(market, region, zone, instance_type)
        if self.offline or any(now - self._failed_at.get(k, -1e18) < RETRY_AFTER_S for k in (market, key)):
            return None
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            return None
        try:
            if market == "spot":
                per_zone = fetch_spot_prices(self.clients.ec2(region), instance_type, zone)
                if not per_zone:
                    raise PriceUnavailable(f"AWS lists no spot price for {instance_type} in {zone or region}")
                # Without a zone, quote the cheapest zone: where a spot request would be placed.
                z, (usd, _) = min(per_zone.items(), key=lambda kv: kv[1][0])
                return Price(usd, "aws-spot-api", now, zone=z)
            usd = fetch_on_demand_price(self.clients.pricing(), instance_type, region)
            return Price(usd, "aws-pricing-api", now)
        except (BotoCoreError, ClientError, PriceUnavailable, OSError) as exc:
            # An unknown type backs off only itself; credentials, throttling and timeouts would
            # hit every type of this market alike, so they back off the whole market.
            self._failed_at[key if isinstance(exc, PriceUnavailable) else market] = now
            self.last_error[market] = f"{type(exc).__name__}: {exc}"
            log.info("spotfit: %s price for %s unavailable from AWS: %s", market, instance_type, exc)
            return None
