"""The tracker: its Ray-facing parsing without Ray, then the actor on the session's local Ray."""
from __future__ import annotations

import time

import pytest

from orchestrator.costs import Owner
from orchestrator.tracker import gauge_rows, holdings_from_placement_groups, node_info
from pipeline.config import CostConfig

# Shapes as ray.nodes() and ray.util.placement_group_table() return them in Ray 2.60.
LABELLED = {"NodeID": "aa" * 28, "Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0, "memory": 1e10},
            "Labels": {"spotfit/instance-type": "g5.xlarge", "spotfit/market": "spot", "spotfit/zone": "us-west-2b", "ray.io/node-id": "aa" * 28}}
LOCAL = {"NodeID": "bb" * 28, "Alive": True, "Resources": {"CPU": 4.0}, "Labels": {"ray.io/node-id": "bb" * 28}}
PGS = {
    "07928dfb52079d224c99ea806eca01000000": {"state": "CREATED", "bundles": {0: {"CPU": 1.0, "GPU": 1.0}, 1: {"CPU": 1.0}},
                                             "bundles_to_node_id": {0: "aa" * 28, 1: "bb" * 28}},
    "11111111111111111111111111112000000": {"state": "CREATED", "bundles": {0: {"CPU": 2.0}}, "bundles_to_node_id": {0: "bb" * 28}},
    "22222222222222222222222222223000000": {"state": "PENDING", "bundles": {0: {"CPU": 8.0}}, "bundles_to_node_id": {0: ""}},
}


def test_labelled_node_is_priced_by_its_labels():
    info = node_info(LABELLED, CostConfig())
    assert (info.instance_type, info.market, info.zone, info.region, info.cpus, info.gpus) == ("g5.xlarge", "spot", "us-west-2b", "us-west-2", 4.0, 1.0)


def test_unlabelled_node_is_priced_by_cost_config():
    info = node_info(LOCAL, CostConfig(instance_type="m5.large", market="spot", region="eu-west-1"))
    assert (info.instance_type, info.market, info.region, info.cpus) == ("m5.large", "spot", "eu-west-1", 4.0)


def test_placement_groups_charge_their_job_and_tagged_trial():
    held = holdings_from_placement_groups(PGS, {"11111111111111111111111111112000000": "trial_7"})
    assert held == {
        ("aa" * 28, Owner("01000000")): (1.0, 1.0),
        ("bb" * 28, Owner("01000000")): (1.0, 0.0),
        ("bb" * 28, Owner("12000000", "trial_7")): (2.0, 0.0),
    }


def test_gauge_rows_cover_totals_node_types_jobs_and_trials():
    report = {"total_usd": 1.5, "usd_per_hour": 0.6, "idle_usd": 0.2, "preemption_loss_usd": 0.1,
              "nodes": [{"instance_type": "g5.xlarge", "market": "spot", "spend_usd": 1.0, "usd_per_hour": 0.4, "alive": True},
                        {"instance_type": "g5.xlarge", "market": "spot", "spend_usd": 0.3, "usd_per_hour": 0.4, "alive": False},
                        {"instance_type": "m5.large", "market": "on-demand", "spend_usd": 0.2, "usd_per_hour": 0.2, "alive": True}],
              "jobs": [{"job": "01000000", "spend_usd": 1.2, "usd_per_hour": 0.4, "trials": [{"trial": "t1", "spend_usd": 0.5, "usd_per_hour": 0.2}]}]}
    rows = {(name, tuple(sorted(tags.items()))): value for name, value, tags in gauge_rows(report)}
    assert rows[("spotfit_node_spend_usd", (("market", "spot"), ("node_type", "g5.xlarge")))] == pytest.approx(1.3)
    assert rows[("spotfit_node_usd_per_hour", (("market", "spot"), ("node_type", "g5.xlarge")))] == pytest.approx(0.4)
    assert rows[("spotfit_job_spend_usd", (("job", "01000000"), ("trial", "t1")))] == 0.5
    assert rows[("spotfit_waste_usd", (("kind", "preemption"),))] == 0.1


@pytest.mark.ray
def test_tracker_on_local_ray_charges_a_placement_group(ray_session, tmp_path):
    ray = ray_session
    from ray.util.placement_group import placement_group, remove_placement_group

    from orchestrator import tracker as tr

    ledger = tmp_path / "ledger.jsonl"
    price = 3.6  # $/h for the whole local node: 0.001 $/s, easy to check by hand
    handle = tr.start_tracker(CostConfig(price_per_hour=price), ledger, interval_s=0.2, offline=True)
    try:
        first = ray.get(handle.report.remote())
        node = first["nodes"][0]
        assert (node["instance_type"], node["price_source"], node["usd_per_hour"]) == ("m5.xlarge", "configured", price)
        cpus = node["cpus"]
        pg = placement_group([{"CPU": 1}, {"CPU": 1}])
        ray.get(pg.ready())
        ray.get(handle.tag.remote(pg.id.hex(), "trial_a"))
        held_from = time.time()
        time.sleep(3.0)
        remove_placement_group(pg)
        held_s = time.time() - held_from
        time.sleep(1.0)
        rep = ray.get(handle.report.remote())
        job = ray.get_runtime_context().get_job_id()
        row = next(j for j in rep["jobs"] if j["job"] == job)
        expected = price / 3600 * held_s * 2 / cpus
        # polled every 0.2 s: the hold is seen up to one interval late at each end
        assert row["spend_usd"] == pytest.approx(expected, abs=price / 3600 * 0.45 * 2 / cpus)
        assert row["trials"][0]["trial"] == "trial_a" and row["usd_per_hour"] == 0.0
        assert rep["idle_usd"] > 0 and rep["total_usd"] == pytest.approx(row["spend_usd"] + rep["idle_usd"], rel=1e-9)
        assert rep["usd_per_hour"] == price
        # the node's spend grows with wall time at the configured price
        assert rep["total_usd"] - first["total_usd"] == pytest.approx(price / 3600 * (rep["t"] - first["t"]), rel=1e-9)
        before = rep["total_usd"]
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle)
    # a restarted tracker replays the ledger: history survives
    handle = tr.start_tracker(CostConfig(price_per_hour=price), ledger, interval_s=0.2, offline=True)
    try:
        again = ray.get(handle.report.remote())
        assert again["total_usd"] >= before
        assert next(j for j in again["jobs"] if j["job"] == job)["spend_usd"] == pytest.approx(row["spend_usd"], rel=1e-9)
    finally:
        ray.get(handle.stop.remote())
        ray.kill(handle)
