"""The realistic benchmark's settings, goal verdicts and report, from a recorded --quick run's sections."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from bookcast.bench.realistic_goals import judge
from bookcast.bench.realistic_report import SECTIONS, document, lines
from bookcast.bench.realistic_settings import (
    DEFAULT_PHASES,
    QUICK_PHASES,
    Settings,
    SettingsError,
    build_parser,
    settings_from,
)

SAMPLE = orjson.loads((Path(__file__).parent / "realistic_sample.json").read_bytes())


def settings(*argv: str) -> Settings:
    return settings_from(build_parser().parse_args(list(argv)))


def sections(**changes):
    out = copy.deepcopy(SAMPLE)
    out.pop("machine")
    for path, value in changes.items():
        section, key = path.split("__")
        out[section][key] = value
    return out


def report(s: Settings, parts: dict) -> dict:
    doc = document(s, parts, [], SAMPLE["machine"])
    return document(s, parts, judge(s, doc), SAMPLE["machine"])


def verdicts(s: Settings, parts: dict) -> dict[str, dict]:
    return {v["goal"]: v for v in report(s, parts)["goals"]}


def test_defaults_are_the_goals_set_up_and_quick_is_small():
    s = settings()
    assert (s.pairs, s.rate, s.clients, s.pairs_min, s.pairs_max, s.ramp, s.sources) == (
        200,
        3000,
        2000,
        1,
        5,
        500,
        4,
    )
    assert (s.storm_clients, s.pause, s.phases, s.overload) == (3000, 15.0, DEFAULT_PHASES, 4000)
    q = settings("--quick")
    assert q.quick and q.phases == QUICK_PHASES and q.clients == 200 and q.pairs == 50
    custom = settings(
        "--quick", "--clients", "50", "--pairs-per-client", "2", "--phases", "pause", "--json", "x"
    )
    assert (custom.clients, custom.pairs_min, custom.pairs_max, custom.phases) == (
        50,
        2,
        2,
        ("ramp", "pause"),
    )
    assert custom.json_path == "x" and custom.source_list() == (
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--pairs", "2000"], "--pairs"),
        (["--pairs-per-client", "5-1"], "--pairs-per-client"),
        (["--pairs-per-client", "x"], "N or N-M"),
        (["--phases", "ramp,nope"], "--phases"),
        (["--rate", "0"], "--rate"),
        (["--gateways", "0"], "--gateways"),
        (["--verify-sample", "2"], "--verify-sample"),
    ],
)
def test_bad_settings_name_the_flag(argv, fragment):
    with pytest.raises(SettingsError, match=fragment):
        settings(*argv)


def test_every_section_and_goal_is_in_the_report_even_when_not_run():
    s = settings("--quick")
    doc = report(s, {"ramp": SAMPLE["ramp"], "steady": SAMPLE["steady"]})
    assert set(SECTIONS) <= set(doc) and doc["storm"] is None and doc["synthetic"] is None
    goals = {v["goal"]: v for v in doc["goals"]}
    assert list(goals) == ["frames", "ramp", "overload", "storm", "catch-up", "per-core"]
    assert goals["storm"]["met"] is None and "not run" in goals["storm"]["figure"]
    orjson.dumps(doc)  # JSON-ready
    text = "\n".join(lines(doc))
    assert "[n/a]" in text and "SIGKILLed" not in text


def test_verdicts_follow_the_figures():
    s = settings("--quick")
    v = verdicts(s, sections())
    assert v["frames"]["met"] is False and "13.9 frames/s" in v["frames"]["figure"]
    assert v["ramp"]["met"] is False and "1015 refusals" in v["ramp"]["figure"]
    assert v["storm"]["met"] is True and v["catch-up"]["met"] is True
    assert v["overload"]["met"] is False and v["per-core"]["met"] is False  # 71,902 vs 120,000 per core
    assert not v["ramp"]["at_scale"]  # a quick run is judged but says it is not at the goal's scale
    better = sections(ramp__refusals=0, storm__synced_after_restart_s=12.5, pause__caught_up_after_s=None)
    better["steady"]["latency_ms_with_ramp"]["window_to_receipt"]["p99_ms"] = 240.0
    better["steady"]["groups"]["listed"]["frames_per_client_per_s"] = 9.9
    v = verdicts(s, better)
    assert v["ramp"]["met"] is True and v["frames"]["met"] is True
    assert v["storm"]["met"] is False and v["catch-up"]["met"] is False and "never" in v["catch-up"]["figure"]
    gone = sections(storm__gone_for_good=3)
    assert verdicts(s, gone)["storm"]["met"] is False


def test_the_overload_goal_needs_everyone_in_a_bounded_p99_and_memory():
    s = settings()
    fine = sections(overload__connect_failures=0)
    fine["overload"]["latency_ms"]["window_to_receipt"]["p99_ms"] = 300.0
    fine["overload"]["window_p99_last_third_ms"] = 320.0
    assert verdicts(s, fine)["overload"]["met"] is True
    grows = copy.deepcopy(fine)
    grows["overload"]["gateway_rss_mib"] = [68.0, 120.0]
    assert verdicts(s, grows)["overload"]["met"] is False
    left_out = copy.deepcopy(fine)
    left_out["overload"]["connected"] = 599
    assert verdicts(s, left_out)["overload"]["met"] is False


def test_the_printed_report_has_every_headline_figure():
    text = "\n".join(lines(report(settings("--quick"), sections())))
    for fragment in (
        "pair-deltas/s", "frames/s", "per 100 ms window", "deltas per frame", "window -> recv",
        "exchange -> recv", "CPU (cores): gateways", "KiB per connection", "connects/s", "connect failures",
        "refusals", "synced again", "gone for good", "catch-up", "x the live rate", "per core", "[MISSED]",
        "[met]*", "load-main", "refusing handshakes for load 25 % of the time",
    ):  # fmt: skip
        assert fragment in text, fragment


def test_a_lagging_load_generator_is_called_out():
    parts = sections(steady__generator_loop_lag_ms=2_500.0)
    text = "\n".join(lines(report(settings("--quick"), parts)))
    assert "late by at most 2,500 ms (WARNING" in text
    assert "WARNING" not in "\n".join(lines(report(settings("--quick"), sections())))
