"""Prices against real boto3 clients: a moto server on loopback for EC2, Stubber for the Pricing API.

Stubber checks every request and response against AWS's service model, so a wrong parameter
name or a malformed canned response fails here, not on a cluster.
"""
from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from orchestrator import pricing
from orchestrator.pricing import PriceBook, PriceCache, PriceUnavailable

UTC = dt.timezone.utc


@pytest.fixture
def fake_creds(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _client(service, region="us-east-1", **kw):
    # A fresh session each time: boto3's default one keeps the first credentials it resolved.
    return boto3.session.Session().client(service, region_name=region, config=Config(retries={"max_attempts": 1}), **kw)


class Clients:
    """The PriceBook's client factory, handing out the clients a test prepared."""

    def __init__(self, ec2=None, pricing=None):
        self._ec2, self._pricing = ec2, pricing
        self.calls = 0

    def ec2(self, region):
        self.calls += 1
        return self._ec2

    def pricing(self):
        self.calls += 1
        return self._pricing


def _product(usd: str, unit: str = "Hrs") -> str:
    """One Price List item, shaped like AWS's (only the fields the parser reads are filled)."""
    return json.dumps({
        "product": {"attributes": {"instanceType": "g5.xlarge", "operatingSystem": "Linux"}},
        "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {
            "SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": unit, "pricePerUnit": {"USD": usd}}}}}},
    })


# --- EC2 spot price history on the moto server ------------------------------------------------


def test_spot_prices_from_moto_server(moto_endpoint, fake_creds):
    ec2 = _client("ec2", endpoint_url=moto_endpoint)
    per_zone = pricing.fetch_spot_prices(ec2, "g5.xlarge")
    # moto answers one fixed price for every zone that offers the type
    assert per_zone and all(z.startswith("us-east-1") for z in per_zone)
    assert {usd for usd, _ in per_zone.values()} == {0.00001}
    zone = sorted(per_zone)[0]
    assert set(pricing.fetch_spot_prices(ec2, "g5.xlarge", zone=zone)) == {zone}
    assert pricing.fetch_spot_prices(ec2, "no-such.type") == {}


def test_pricebook_reads_moto_then_serves_from_cache(moto_endpoint, fake_creds, tmp_path):
    clients = Clients(ec2=_client("ec2", endpoint_url=moto_endpoint))
    book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=clients, offline=False)
    live = book.price("g5.xlarge", "spot", "us-east-1")
    assert (live.usd_per_hour, live.source, live.stale) == (0.00001, "aws-spot-api", False)
    assert live.zone.startswith("us-east-1")
    again = book.price("g5.xlarge", "spot", "us-east-1")
    assert again.usd_per_hour == 0.00001 and clients.calls == 1  # the fresh cache answered


# --- paging and parsing, Stubber-checked ---------------------------------------------------------


def test_spot_history_follows_next_token_and_keeps_latest_per_zone():
    ec2 = _client("ec2")
    t0 = dt.datetime(2025, 3, 1, 12, tzinfo=UTC)
    rec = lambda zone, price, minutes, desc="Linux/UNIX": {  # noqa: E731
        "AvailabilityZone": zone, "InstanceType": "g5.xlarge", "ProductDescription": desc,
        "SpotPrice": price, "Timestamp": t0 + dt.timedelta(minutes=minutes)}
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [rec("us-east-1a", "0.41", 0), rec("us-east-1b", "0.52", 5)], "NextToken": "page2"},
                          {"InstanceTypes": ["g5.xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY, "EndTime": ANY})
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [rec("us-east-1a", "0.39", 10), rec("us-east-1b", "9.99", 12, "Windows")], "NextToken": ""},
                          {"InstanceTypes": ["g5.xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY, "EndTime": ANY, "NextToken": "page2"})
        latest = pricing.fetch_spot_prices(ec2, "g5.xlarge", at=t0)
        stub.assert_no_pending_responses()
    assert {z: p for z, (p, _) in latest.items()} == {"us-east-1a": 0.39, "us-east-1b": 0.52}


def test_on_demand_price_from_pricing_api_stub(tmp_path):
    client = _client("pricing")
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [_product("1.0060000000")], "FormatVersion": "aws_v1"},
                          {"ServiceCode": "AmazonEC2", "Filters": ANY})
        book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=Clients(pricing=client), offline=False)
        p = book.price("g5.xlarge", "on-demand", "us-east-1")
        stub.assert_no_pending_responses()
    assert (p.usd_per_hour, p.source, p.stale) == (1.006, "aws-pricing-api", False)
    assert json.loads((tmp_path / "p.json").read_text())["on-demand|us-east-1||g5.xlarge"]["usd_per_hour"] == 1.006


def test_pricing_filters_name_the_type_and_region():
    client = _client("pricing")
    term = lambda f, v: {"Type": "TERM_MATCH", "Field": f, "Value": v}  # noqa: E731
    expected = {"ServiceCode": "AmazonEC2", "Filters": [
        term("instanceType", "m5.xlarge"), term("regionCode", "us-east-1"), term("operatingSystem", "Linux"),
        term("tenancy", "Shared"), term("preInstalledSw", "NA"), term("capacitystatus", "Used"),
        term("location", "US East (N. Virginia)")]}
    with Stubber(client) as stub:
        # a variant SKU at a higher price and a non-hourly dimension must not win
        stub.add_response("get_products", {"PriceList": [_product("0.2300"), _product("5.0", unit="Quantity")], "NextToken": "t"}, expected)
        stub.add_response("get_products", {"PriceList": [_product("0.1920")]}, {**expected, "NextToken": "t"})
        assert pricing.fetch_on_demand_price(client, "m5.xlarge", "us-east-1") == 0.192
        stub.assert_no_pending_responses()


# --- failures fall back, marked stale, and never raise -------------------------------------------


def test_throttled_pricing_falls_back_to_old_cache_marked_stale(tmp_path):
    now = [1_000_000.0]
    cache = PriceCache(tmp_path / "p.json")
    cache.put("on-demand|us-east-1||g5.xlarge", pricing.Price(0.99, "aws-pricing-api", now[0] - 30 * 86400))
    client = _client("pricing")
    with Stubber(client) as stub:
        stub.add_client_error("get_products", service_error_code="ThrottlingException", service_message="Rate exceeded", http_status_code=400)
        clients = Clients(pricing=client)
        book = PriceBook(cache=cache, clients=clients, offline=False, clock=lambda: now[0])
        p = book.price("g5.xlarge", "on-demand")
        assert (p.usd_per_hour, p.stale, p.label) == (0.99, True, "aws-pricing-api (stale)")
        assert "ThrottlingException" in book.last_error["on-demand"]
        # backed off: the next lookup does not call AWS again
        book.price("g5.xlarge", "on-demand")
        assert clients.calls == 1


def test_throttled_spot_without_cache_uses_snapshot(tmp_path):
    client = _client("ec2")
    with Stubber(client) as stub:
        stub.add_client_error("describe_spot_price_history", service_error_code="RequestLimitExceeded", http_status_code=503)
        book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=Clients(ec2=client), offline=False)
        p = book.price("p4d.24xlarge", "spot")
    snap = pricing.load_snapshot()
    assert (p.usd_per_hour, p.source, p.stale) == (snap["spot"]["us-east-1"]["p4d.24xlarge"], "snapshot", True)


def test_missing_credentials_fall_back_without_raising(tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup from a laptop
    book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=Clients(pricing=_client("pricing")), offline=False)
    p = book.price("m5.xlarge", "on-demand")
    assert (p.usd_per_hour, p.source, p.stale) == (0.192, "snapshot", True)
    assert "NoCredentialsError" in book.last_error["on-demand"]


def test_unknown_type_everywhere_raises_price_unavailable(tmp_path):
    client = _client("pricing")
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": []}, {"ServiceCode": "AmazonEC2", "Filters": ANY})
        book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=Clients(pricing=client), offline=False)
        with pytest.raises(PriceUnavailable, match="cost.price_per_hour"):
            book.price("x9.unknown", "on-demand")


def test_offline_never_calls_aws(tmp_path):
    clients = Clients()
    book = PriceBook(cache=PriceCache(tmp_path / "p.json"), clients=clients, offline=True)
    assert book.price("g4dn.xlarge", "on-demand").usd_per_hour == 0.526
    assert clients.calls == 0


def test_snapshot_covers_the_training_and_head_types():
    snap = pricing.load_snapshot()
    needed = ["g4dn.xlarge", "g5.xlarge", "g5.12xlarge", "g6.xlarge", "p3.2xlarge", "p4d.24xlarge", "p5.48xlarge", "m5.large", "m5.xlarge"]
    for market in ("on_demand", "spot"):
        assert all(snap[market]["us-east-1"][t] > 0 for t in needed)
    assert all(snap["spot"]["us-east-1"][t] < snap["on_demand"]["us-east-1"][t] for t in needed)
    assert "us-east-1" in snap["source"] and "not live" in snap["source"].lower()
