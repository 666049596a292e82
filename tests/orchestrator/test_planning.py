"""Planning: the checkpoint/restart model against closed forms and a simulation."""
from __future__ import annotations

import math
import random

import pytest

from orchestrator.planning import best_interval, expected_wall_s, plan, time_weighted_mean, young_daly_interval


def test_no_failures_costs_only_checkpoints():
    assert expected_wall_s(3600, 600, 30, 300, math.inf) == pytest.approx(3600 + 6 * 30)


def test_numeric_optimum_is_near_young_daly_when_checkpoints_are_cheap():
    c, m = 30.0, 20 * 3600.0
    tau = best_interval(100 * 3600, c, 0.0, m)
    assert tau == pytest.approx(young_daly_interval(c, m), rel=0.05)
    # and it is a minimum
    f = lambda t: expected_wall_s(100 * 3600, t, c, 0.0, m)  # noqa: E731
    assert f(tau) <= f(tau * 0.8) and f(tau) <= f(tau * 1.25)


def test_expected_wall_time_matches_a_simulation():
    work, tau, c, r, m = 10 * 3600.0, 1800.0, 60.0, 300.0, 2 * 3600.0
    rng = random.Random(0)
    runs = []
    for _ in range(4000):
        wall, done = 0.0, 0.0
        next_fail = rng.expovariate(1 / m)
        while done < work - 1e-9:
            seg = min(tau, work - done) + c
            if next_fail >= seg:
                wall += seg
                next_fail -= seg
                done += seg - c
            else:
                wall += next_fail
                # restart: failures may also strike during the restart (they restart it)
                while True:
                    nf = rng.expovariate(1 / m)
                    if nf >= r:
                        wall += r
                        next_fail = nf - r
                        break
                    wall += nf
        runs.append(wall)
    sim = sum(runs) / len(runs)
    assert expected_wall_s(work, tau, c, r, m) == pytest.approx(sim, rel=0.02)


def test_time_weighted_mean():
    hist = [(0.0, 0.30), (600.0, 0.60), (2400.0, 0.40)]
    assert time_weighted_mean(hist, 0, 3600) == pytest.approx((0.3 * 600 + 0.6 * 1800 + 0.4 * 1200) / 3600)
    assert time_weighted_mean(hist, 1200, 3000) == pytest.approx((0.6 * 1200 + 0.4 * 600) / 1800)


def test_plan_spot_vs_on_demand():
    spot = plan("spot", 0.40, "snapshot", 10, checkpoint_s=60, restart_s=300, interruptions_per_hour=0.2)
    od = plan("on-demand", 1.006, "snapshot", 10, checkpoint_s=60, restart_s=300, interruptions_per_hour=0)
    assert od.wall_s == pytest.approx(10 * 3600 + 60) and od.cost_usd == pytest.approx(1.006 * od.wall_s / 3600)
    assert spot.wall_s > 10 * 3600 and spot.cost_usd < od.cost_usd
    assert spot.young_daly_s == pytest.approx(math.sqrt(2 * 60 * 5 * 3600))
