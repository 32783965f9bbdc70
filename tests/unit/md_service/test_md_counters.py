"""md_service.counters: one set of counters, one dict view of them, the window latencies.

How the exporter and the status bus read these is ``test_obs_md_metrics.py``'s; here, the
counters' own rules.
"""

from __future__ import annotations

from md_service.counters import STAGES, MdCounters, WindowLatency
from md_service.pair_stream import WindowOutput
from mdcore.codec import encode_delta
from mdcore.messages import Delta

NOW_NS = 1_700_000_000_000_000_000


def delta(ts: int, xts: int) -> bytes:
    return encode_delta(Delta("BTC-USD", "e1", 1, ts, xts, [["1.00", "2"]], [], 1))


def output(raw: bytes) -> WindowOutput:
    return WindowOutput("BTC-USD", 0, "e1", 1, 1, raw, None, None)


def test_every_counter_starts_at_zero_and_is_in_the_dict_view() -> None:
    view = MdCounters().as_dict()
    plain = set(MdCounters.__slots__) - {"invalid", "latency"}
    assert plain <= set(view) and all(view[name] == 0 for name in plain)
    assert view["invalid"] == {}
    extras = {"publish_ms_p50", "publish_ms_p99", "publish_ms_p99.9", "publish_ms_max", "build_ms_p99"}
    assert set(view) == plain | {"invalid"} | extras and all(view[name] == 0 for name in extras)


def test_an_invalid_event_counts_in_the_total_and_by_its_kind() -> None:
    c = MdCounters()
    c.count_invalid("not_json")
    c.count_invalid("not_json")
    c.count_invalid("bad_side")
    view = c.as_dict()
    assert view["events_invalid"] == 3 and view["invalid"] == {"not_json": 2, "bad_side": 1}
    view["invalid"]["not_json"] = 99  # the view is a copy
    assert c.invalid["not_json"] == 2


def test_a_written_window_times_each_published_delta_from_its_own_stamps() -> None:
    latency = WindowLatency()
    outputs = [
        output(delta(NOW_NS - 2_000_000, NOW_NS - 62_000_000)),  # closed 2 ms ago after 60 ms
        output(b""),  # a state-only write: nothing was published
        output(b"?"),  # not md_service's encoding: skipped, no failure
    ]
    latency.written(outputs, NOW_NS)
    to_close, to_publish = (latency.histograms[stage] for stage in STAGES)
    assert (to_close.count, to_publish.count) == (1, 1)
    assert to_close.highest() == 60_000 and to_publish.highest() == 2_000  # µs
    assert latency.build.count == 0  # the write's build time is the service's to record


def test_the_dict_view_reports_publish_latency_in_milliseconds() -> None:
    c = MdCounters()
    c.latency.written([output(delta(NOW_NS - 4_000_000, NOW_NS - 5_000_000))], NOW_NS)
    c.latency.build.record(1_500)
    view = c.as_dict()
    assert view["publish_ms_max"] == 4.0  # the highest is exact; a percentile at most a bucket above
    assert 4.0 <= view["publish_ms_p99"] < 4.5 and 1.5 <= view["build_ms_p99"] < 1.7
