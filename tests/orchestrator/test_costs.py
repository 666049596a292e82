"""Cost integration on a scripted timeline, checked against figures computed by hand."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from orchestrator.costs import CostBook, NodeInfo, Owner, PolledNode, reconcile, shares
from orchestrator.ledger import Ledger

REL = 1e-6
G5 = dict(instance_type="g5.xlarge", market="spot", cpus=4, gpus=1, zone="us-east-1a", region="us-east-1")
M5 = dict(instance_type="m5.xlarge", market="on-demand", cpus=4, gpus=0, region="us-east-1")
JOB1, JOB2 = Owner("01000000"), Owner("02000000")
T1, T2 = Owner("03000000", "trial_1"), Owner("03000000", "trial_2")


def up(t, nid, usd, **info):
    return {"t": t, "kind": "node_up", "node": {"node_id": nid, **info}, "usd_per_hour": usd, "source": "test"}


def hold(t, nid, owner, cpus, gpus=0):
    return {"t": t, "kind": "hold", "node_id": nid, "owner": asdict(owner), "cpus": cpus, "gpus": gpus}


TIMELINE = [
    up(0, "A", 0.40, **G5), up(0, "B", 0.192, **M5),
    hold(0, "A", JOB1, 1, 1),                                   # the GPU: all of A
    hold(600, "B", JOB2, 2), hold(600, "B", T1, 1), hold(600, "B", T2, 1),
    {"t": 1200, "kind": "price", "node_id": "A", "usd_per_hour": 0.55, "source": "test"},
    {"t": 1500, "kind": "checkpoint", "owner": asdict(JOB1)},
    up(1800, "C", 0.50, **G5), hold(1800, "C", JOB1, 1, 1),
    {"t": 2400, "kind": "node_down", "node_id": "A", "died": True},
    hold(3000, "B", T2, 0),
    {"t": 3600, "kind": "node_down", "node_id": "B"}, {"t": 3600, "kind": "node_down", "node_id": "C"},
]

# By hand, $/h x seconds / 3600:
A = 0.40 * 1200 / 3600 + 0.55 * 1200 / 3600            # price change at 1200, died at 2400
B = 0.192                                               # the whole hour
C = 0.50 * 1800 / 3600
B_IDLE = 0.192 * 600 / 3600 + 0.192 * 600 / 3600 * 0.25  # nobody before 600; trial_2's quarter after 3000
EXPECTED = {
    "total": A + B + C,
    JOB1: A + C,
    JOB2: 0.192 * 3000 / 3600 * 0.5,
    T1: 0.192 * 3000 / 3600 * 0.25,
    T2: 0.192 * 2400 / 3600 * 0.25,
    "idle": B_IDLE,
    # job1 checkpointed at 1500: A from 1500 to 2400 at 0.55, C from 1800 to 2400 at 0.50
    "loss": 0.55 * 900 / 3600 + 0.50 * 600 / 3600,
}


def run(events):
    book = CostBook()
    for e in events:
        book.apply(e)
    return book


def test_scripted_timeline_matches_hand_computed_figures():
    book = run(TIMELINE)
    rep = book.report()
    assert rep["total_usd"] == pytest.approx(EXPECTED["total"], rel=REL)
    for owner in (JOB1, JOB2, T1, T2):
        assert book.owner_spend[owner] == pytest.approx(EXPECTED[owner], rel=REL)
    assert rep["idle_usd"] == pytest.approx(EXPECTED["idle"], rel=REL)
    assert rep["preemption_loss_usd"] == pytest.approx(EXPECTED["loss"], rel=REL)
    # every dollar is someone's or waste
    assert sum(book.owner_spend.values()) + rep["idle_usd"] == pytest.approx(rep["total_usd"], rel=REL)
    job3 = next(j for j in rep["jobs"] if j["job"] == "03000000")
    assert job3["spend_usd"] == pytest.approx(EXPECTED[T1] + EXPECTED[T2], rel=REL)
    assert [t["trial"] for t in job3["trials"]] == ["trial_1", "trial_2"]
    assert rep["usd_per_hour"] == 0.0 and all(not n["alive"] for n in rep["nodes"])


def test_last_price_times_duration_would_be_wrong():
    """The price change matters: charging A's last price for its whole life overstates it."""
    book = run(TIMELINE)
    node_a = next(n for n in book.report()["nodes"] if n["node_id"] == "A")
    assert node_a["spend_usd"] == pytest.approx(A, rel=REL)
    assert abs(node_a["spend_usd"] - 0.55 * 2400 / 3600) > 0.01


def test_dominant_share_and_oversubscription():
    node = NodeInfo("A", "g5.xlarge", "spot", cpus=4, gpus=1)
    assert shares(node, {JOB1: (1, 1)}) == {JOB1: 1.0}
    assert shares(node, {JOB2: (2, 0)}) == {JOB2: 0.5}
    both = shares(node, {JOB1: (1, 1), JOB2: (3, 0)})  # 1 + 0.75 > 1: scaled down to sum to 1
    assert both[JOB1] == pytest.approx(1 / 1.75) and sum(both.values()) == pytest.approx(1.0)


def test_live_rates_mid_run():
    book = run([e for e in TIMELINE if e["t"] <= 1800])
    book.advance(2000)
    assert book.owner_rate(JOB1) == pytest.approx(0.55 + 0.50)
    assert book.owner_rate(JOB2) == pytest.approx(0.096)
    assert book.report()["usd_per_hour"] == pytest.approx(0.55 + 0.192 + 0.50)


def test_reconcile_turns_polls_into_the_same_totals():
    """Polling at the event times gives the same book as the scripted events."""
    a, b, c = (NodeInfo(n, **kw) for n, kw in (("A", G5), ("B", M5), ("C", G5)))
    polls = [  # (t, nodes with $/h, holdings, died)
        (0, [(a, 0.40), (b, 0.192)], {("A", JOB1): (1, 1)}, set()),
        (600, [(a, 0.40), (b, 0.192)], {("A", JOB1): (1, 1), ("B", JOB2): (2, 0), ("B", T1): (1, 0), ("B", T2): (1, 0)}, set()),
        (1200, [(a, 0.55), (b, 0.192)], {("A", JOB1): (1, 1), ("B", JOB2): (2, 0), ("B", T1): (1, 0), ("B", T2): (1, 0)}, set()),
        (1800, [(a, 0.55), (b, 0.192), (c, 0.50)], {("A", JOB1): (1, 1), ("C", JOB1): (1, 1), ("B", JOB2): (2, 0), ("B", T1): (1, 0), ("B", T2): (1, 0)}, set()),
        (2400, [(b, 0.192), (c, 0.50)], {("C", JOB1): (1, 1), ("B", JOB2): (2, 0), ("B", T1): (1, 0), ("B", T2): (1, 0)}, {"A"}),
        (3000, [(b, 0.192), (c, 0.50)], {("C", JOB1): (1, 1), ("B", JOB2): (2, 0), ("B", T1): (1, 0)}, set()),
        (3600, [], {}, set()),
    ]
    book = CostBook()
    n_events = 0
    for t, nodes, holdings, died in polls:
        events = reconcile(book, t, [PolledNode(n, usd, "test") for n, usd in nodes], holdings, died)
        n_events += len(events)
        for e in events:
            book.apply(e)
    assert book.report()["total_usd"] == pytest.approx(EXPECTED["total"], rel=REL)
    for owner in (JOB1, JOB2, T1, T2):
        assert book.owner_spend[owner] == pytest.approx(EXPECTED[owner], rel=REL)
    assert book.report()["idle_usd"] == pytest.approx(EXPECTED["idle"], rel=REL)
    # no checkpoint was reported, so job1 loses everything it spent until A died
    assert book.preemption_loss == pytest.approx(0.40 * 1200 / 3600 + 0.55 * 1200 / 3600 + 0.50 * 600 / 3600, rel=REL)
    # a poll where nothing changed is one tick, not a re-statement of the cluster
    assert reconcile(book, 3700, [], {}) == [{"t": 3700, "kind": "tick"}]


def test_ledger_replay_after_restart(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(TIMELINE[:8])
    with ledger.path.open("a") as f:
        f.write('{"t": 99, "kind": "tic')  # a crash mid-write
    restarted = run(list(ledger.read()))
    ledger.append(TIMELINE[8:])
    assert run(list(ledger.read())).report()["total_usd"] == pytest.approx(EXPECTED["total"], rel=REL)
    assert restarted.t == 1500


def test_departures_after_restart_are_dated_at_the_last_record():
    book = run([up(0, "A", 0.36, **G5), {"t": 100, "kind": "tick"}])
    # the tracker was down from 100 to 1000; node A is gone by then
    for e in reconcile(book, 1000, [], {}, gone_at=book.t):
        book.apply(e)
    assert book.report()["total_usd"] == pytest.approx(0.36 * 100 / 3600, rel=REL)


def test_out_of_order_events_are_a_bug():
    book = run([up(10, "A", 0.4, **G5)])
    with pytest.raises(AssertionError):
        book.apply({"t": 5, "kind": "tick"})
