"""Plan a job: expected dollars and wall time on spot vs on-demand, and the checkpoint interval.

The failure model is the standard one for checkpoint/restart (Daly 2006): interruptions arrive
as a Poisson process with mean time between failures M; a segment is tau seconds of work plus a
checkpoint of C seconds; after an interruption the job waits R seconds (a new node, the restore)
and redoes the segment. The expected wall time of one segment is then

    E(tau) = M * exp(R / M) * (exp((tau + C) / M) - 1)

and of the job (W seconds of work) W / tau * E(tau). Young's and Daly's first-order optimum is
tau* = sqrt(2 C M); `best_interval` also searches E numerically, as tau* drifts from the true
minimum when C is not small against M.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config import ConfigError


def young_daly_interval(checkpoint_s: float, mtbf_s: float) -> float:
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def expected_wall_s(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Expected wall seconds to finish `work_s` of work (inf-free: mtbf_s = inf means no failures)."""
    if math.isinf(mtbf_s):
        return work_s + work_s / interval_s * checkpoint_s
    m = mtbf_s
    segment = m * math.exp(restart_s / m) * math.expm1((interval_s + checkpoint_s) / m)
    return work_s / interval_s * segment


def best_interval(work_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """The interval minimising expected wall time (golden-section search; E is unimodal in tau)."""
    lo, hi = max(1.0, checkpoint_s * 1e-3), max(work_s, 2.0)
    f = lambda tau: expected_wall_s(work_s, tau, checkpoint_s, restart_s, mtbf_s)  # noqa: E731
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(200):
        c, d = b - g * (b - a), a + g * (b - a)
        if f(c) < f(d):
            b = d
        else:
            a = c
    return min((a + b) / 2, work_s)


def time_weighted_mean(history: list[tuple[float, float]], start: float, end: float) -> float:
    """Mean $/h over [start, end] of a step function given as [(t, usd)] change points, sorted."""
    if not history:
        raise ValueError("no price history")
    total, t_prev, p_prev = 0.0, start, None
    for t, usd in history:
        if t <= start:
            p_prev = usd
            continue
        if t >= end:
            break
        if p_prev is not None:
            total += p_prev * (t - t_prev)
        else:
            start = t  # no price known before the first change: average from it
        t_prev, p_prev = t, usd
    total += p_prev * (end - t_prev)
    return total / (end - start)


@dataclass(frozen=True)
class Plan:
    market: str
    usd_per_hour: float
    price_source: str
    interval_s: float
    young_daly_s: float
    wall_s: float
    cost_usd: float


def plan(market: str, usd_per_hour: float, price_source: str, work_hours: float, checkpoint_s: float,
         restart_s: float, interruptions_per_hour: float) -> Plan:
    if work_hours <= 0:
        raise ConfigError(f"--hours must be > 0, got {work_hours}")
    if checkpoint_s <= 0 or restart_s < 0 or interruptions_per_hour < 0:
        raise ConfigError("--checkpoint-seconds must be > 0, --restart-seconds and --interruptions-per-hour >= 0")
    work_s = work_hours * 3600.0
    mtbf_s = math.inf if interruptions_per_hour == 0 else 3600.0 / interruptions_per_hour
    if math.isinf(mtbf_s):
        # Nothing to lose to an interruption: one checkpoint at the end is enough.
        interval, yd = work_s, math.inf
    else:
        interval, yd = best_interval(work_s, checkpoint_s, restart_s, mtbf_s), young_daly_interval(checkpoint_s, mtbf_s)
    wall = expected_wall_s(work_s, interval, checkpoint_s, restart_s, mtbf_s)
    return Plan(market, usd_per_hour, price_source, interval, yd, wall, usd_per_hour * wall / 3600.0)
