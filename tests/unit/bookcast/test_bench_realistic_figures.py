"""The realistic benchmark's arithmetic on made-up timelines, metrics and samples."""

from __future__ import annotations

import pytest

from bookcast.bench.realistic_figures import (
    LagSample,
    all_synced_at,
    catch_up,
    combined,
    cpu_cores,
    gauge_summary,
    latency_ms,
    load_summary,
    prom_samples,
    prom_sum,
    storm_outcome,
    thirds,
    window,
)
from clients.load.stats import ConnTimes, Latencies

T0 = 1_000.0


def rnd(t, frames, deltas=None, *, window_ms=(), synced=10, connections=10, open_=10, resync_ms=(), start=T0):
    """One timeline round at wall time ``t`` with totals so far and this round's latencies."""
    lat, times = Latencies(), ConnTimes()
    for ms in window_ms:
        lat.record_ns(ms * 2_000_000, ms * 1_000_000)
    for ms in resync_ms:
        ConnTimes.record(times.resync, ms * 1_000_000)
    return {
        "t": t, "elapsed": t - start, "open": open_, "synced": synced, "connections": connections,
        "synced_ns": int(t * 1e9) - 100_000_000, "all_open_after": None,
        "counters": {"frames": frames, "deltas": deltas if deltas is not None else 2 * frames, "gaps": 0},
        "latencies": {k: v.decode() for k, v in lat.encode().items()},
        "times": {k: v.decode() for k, v in times.encode().items()},
        "groups": {"drawn": {"connections": 8, "frames": frames - 10, "deltas": 2 * frames - 10},
                   "listed": {"connections": 2, "frames": 10, "deltas": 10}},
    }  # fmt: skip


ROUNDS = [rnd(T0 + 0.5 * i, 100 * i, window_ms=(10 * i,)) for i in range(1, 11)]


def test_prometheus_text_is_summed_by_name_and_labels():
    text = (
        "# HELP x\n# TYPE bookcast_md_consumer_lag gauge\n"
        'bookcast_md_consumer_lag{partition="0"} 120.0\nbookcast_md_consumer_lag{partition="1"} 30\n'
        'bookcast_gateway_counter_total{name="frames_out"} 5e3\n'
        'bookcast_gateway_counter_total{name="deltas_out"} 9000\nbookcast_md_pairs 200\nbroken line\n'
    )
    samples = prom_samples(text)
    assert prom_sum(samples, "bookcast_md_consumer_lag") == 150
    assert prom_sum(samples, "bookcast_md_consumer_lag", {"partition": "1"}) == 30
    assert prom_sum(samples, "bookcast_gateway_counter_total", {"name": "frames_out"}) == 5000
    assert prom_sum(samples, "bookcast_md_pairs") == 200
    assert prom_sum(samples, "nope") is None


def test_a_window_takes_counter_differences_and_the_rounds_histograms():
    w = window(ROUNDS, T0 + 1.0, T0 + 3.0)  # base: the round at 1.0; end: the round at 3.0
    assert w.seconds == pytest.approx(2.0)
    assert w.count("frames") == 400 and w.rates["frames"] == pytest.approx(200.0)
    assert w.latencies.window.get_total_count() == 4  # the rounds at 1.5, 2.0, 2.5, 3.0
    assert w.groups["listed"] == {"connections": 2, "open": 2, "frames": 0, "deltas": 0}
    assert w.per_client() == {"frames_per_client_per_s": pytest.approx(20.0), "deltas_per_frame": 2.0}
    assert w.per_client("drawn")["frames_per_client_per_s"] == pytest.approx(25.0)
    lat = latency_ms(w)
    assert 29 <= lat["window_to_receipt"]["p50_ms"] <= 41 and lat["handshake"] == {"count": 0}


def test_a_window_from_before_the_start_counts_from_zero_and_late_rounds_widen_it():
    first = window(ROUNDS, T0 - 5, T0 + 0.6)  # ends at the first round at or after 0.6: 1.0
    assert first.count("frames") == 200 and first.seconds == pytest.approx(1.0)
    sparse = [ROUNDS[0], ROUNDS[7]]  # a starved generator: nothing between 0.5 and 4.0
    wide = window(sparse, T0 + 1.0, T0 + 2.0)
    assert wide.seconds == pytest.approx(3.5) and wide.count("frames") == 700
    assert window(ROUNDS, T0 + 9, T0 + 10).seconds == 0.0  # no round after the start: nothing


def test_loads_add_up_rates_and_connections():
    other = [rnd(T0 + 0.25 + 0.5 * i, 10 * i, connections=5, synced=5, open_=5) for i in range(1, 11)]
    both = combined([ROUNDS, other], T0 + 1.0, T0 + 3.0)
    assert both.connections == 15 and both.rates["frames"] == pytest.approx(200.0 + 20.0)


def test_the_storm_ends_when_the_last_client_of_the_last_load_is_synced():
    restart = T0 + 2.0
    one = [rnd(T0 + 1.5, 0), rnd(T0 + 2.5, 0, synced=3), rnd(T0 + 3.5, 0, synced=10)]
    two = [rnd(T0 + 1.6, 0, connections=4, synced=4), rnd(T0 + 4.6, 0, connections=4, synced=4)]
    assert all_synced_at(one, restart) == pytest.approx(T0 + 3.4)  # that round's synced_ns, not its time
    outcome = storm_outcome([one, two], restart, deadline=T0 + 10)
    assert outcome.synced_after_s == pytest.approx(2.5) and outcome.gone == 0 and outcome.clients == 14
    stuck = [rnd(T0 + 2.5, 0, synced=3), rnd(T0 + 9.0, 0, synced=8), rnd(T0 + 11, 0, synced=10)]
    late = storm_outcome([stuck, two], restart, deadline=T0 + 10)
    assert late.synced_after_s is None and late.gone == 2  # synced only after the deadline: gone
    early = [rnd(T0 + 2.5, 0, connections=4, synced=4)]  # clients of another gateway: never dropped
    early[0]["synced_ns"] = int((T0 + 0.7) * 1e9)
    assert all_synced_at(early, restart) == restart


def test_catch_up_needs_both_lags_under_the_threshold():
    samples = [
        LagSample(0.05, 0.0, 45_000, 100_000),  # md_service's own figure is stale right after SIGCONT
        LagSample(0.5, 30_000, 31_000, 115_000),
        LagSample(1.0, 5_000, 6_000, 140_000),
        LagSample(1.5, 400, 700, 145_500),
    ]
    result = catch_up(samples, 1_000, backlog=45_000, consumed0=100_000)
    assert result.seconds == 1.5 and result.consumed == 45_500
    assert result.rate == pytest.approx(45_500 / 1.5) and result.peak_lag == 45_000
    never = catch_up(samples[:3], 1_000, backlog=45_000, consumed0=100_000)
    assert never.seconds is None and never.rate is None
    blind = catch_up([LagSample(0.1, None, None, None), LagSample(0.2, 10, None, 99)], 1_000, 5, 90)
    assert blind.seconds == 0.2  # the feed did not answer: md_service's figure alone


def test_cpu_cores_thirds_and_load_summaries():
    cores = cpu_cores({"gateways": 10.0, "md": 5.0}, {"gateways": 14.0, "md": 5.5, "load": 2.0}, 4.0)
    assert cores == {"gateways": 1.0, "md": 0.125, "load": 0.5}
    assert cpu_cores({}, {"x": 1.0}, 0) == {"x": 0.0}
    assert thirds(0.0, 9.0) == ((0.0, 3.0), (6.0, 9.0))
    report = {
        "connections": 5,
        "connected_at_end": 5,
        "counters": {"stale": 1},
        "per_process": [{"cpu_share": 0.2}],
    }
    summary = load_summary(report)
    assert summary is not None and summary["stale"] == 1 and summary["cpu_share"] == [0.2]
    assert summary["gaps"] is None and load_summary(None) is None


def test_the_gateways_own_loop_lag_is_summarised():
    summary = gauge_summary([(0.1, 0.0), (0.3, 1.0), (None, None), (0.2, 1.0)])
    assert summary["loop_lag_ms_mean"] == pytest.approx(200.0) and summary[
        "loop_lag_ms_max"
    ] == pytest.approx(300.0)
    assert summary["overloaded_share"] == pytest.approx(2 / 3) and summary["samples"] == 4
    assert gauge_summary([(None, None)]) == {
        "loop_lag_ms_mean": None, "loop_lag_ms_max": None, "overloaded_share": None, "samples": 1,
    }  # fmt: skip


def test_frames_per_client_count_only_the_clients_that_are_open():
    rounds = [rnd(T0 + 0.5, 0, open_=4), rnd(T0 + 1.5, 100, open_=4)]
    rounds[1]["groups"]["drawn"]["open"] = 2  # the rest refused or reconnecting: they received nothing
    w = window(rounds, T0 + 0.5, T0 + 1.5)
    assert w.per_client()["frames_per_client_per_s"] == pytest.approx(100 / 4)
    assert w.per_client("drawn")["frames_per_client_per_s"] == pytest.approx(100 / 2)
