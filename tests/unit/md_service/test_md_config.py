"""md_service settings: defaults, overrides, and failing fast naming the key."""

from __future__ import annotations

import argparse

import pytest

from md_service.config import add_arguments, load_config
from mdcore.settings import SettingError

BASE = {"KAFKA_BOOTSTRAP": "k:9092", "REDIS_URL": "redis://r:6379/0"}


def load(env: dict, *argv: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return load_config(parser.parse_args(list(argv)), {**BASE, **env})


def test_defaults() -> None:
    cfg = load({})
    assert (cfg.window_ms, cfg.history, cfg.snapshot_every, cfg.session_timeout_ms) == (100, 600, 50, 6000)
    assert (
        cfg.max_poll_interval_ms == 10_000 and cfg.dead_letter_topic == "" and cfg.check_interval_ms == 1000
    )


def test_short_session_timeouts_for_fast_failover() -> None:
    cfg = load({"BOOKCAST_MD_SESSION_TIMEOUT_MS": "2000", "BOOKCAST_MD_INSTANCE": "md-a"})
    assert cfg.session_timeout_ms == 2000 and cfg.heartbeat_interval_ms == 500 and cfg.instance == "md-a"


def test_settings_read_from_the_environment() -> None:
    cfg = load(
        {
            "BOOKCAST_MD_DEAD_LETTER_TOPIC": "bad-events",
            "BOOKCAST_MD_SNAPSHOT_EVERY": "5",
            "BOOKCAST_MD_MAX_BATCH": "500",
            "BOOKCAST_MD_CHECK_MS": "250",
            "BOOKCAST_MD_STATUS_INTERVAL_S": "0.5",
        },
        "--window-ms",
        "50",
    )
    assert (cfg.dead_letter_topic, cfg.snapshot_every, cfg.max_batch) == ("bad-events", 5, 500)
    assert (cfg.check_interval_ms, cfg.status_interval_s, cfg.window_ms) == (250, 0.5, 50)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"BOOKCAST_MD_SESSION_TIMEOUT_MS": "10"}, "BOOKCAST_MD_SESSION_TIMEOUT_MS"),
        (
            {"BOOKCAST_MD_SESSION_TIMEOUT_MS": "9000", "BOOKCAST_MD_MAX_POLL_INTERVAL_MS": "5000"},
            "BOOKCAST_MD_MAX_POLL_INTERVAL_MS",
        ),
        (
            {"BOOKCAST_MD_SNAPSHOT_EVERY": "400"},
            "BOOKCAST_MD_SNAPSHOT_EVERY",
        ),  # history 600 must reach past it
        ({"BOOKCAST_MD_MAX_BATCH": "x"}, "BOOKCAST_MD_MAX_BATCH"),
        ({"BOOKCAST_WINDOW_MS": "500"}, "BOOKCAST_WINDOW_MS"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
    ],
)
def test_bad_settings_fail_fast_naming_the_key(env, key) -> None:
    with pytest.raises(SettingError, match=key):
        load(env)


def test_counters_export_as_plain_json() -> None:
    import orjson

    from md_service.counters import MdCounters

    counters = MdCounters()
    counters.count_invalid("bad_side")
    counters.latency.build.record(800)
    counters.latency.histograms["close_to_publish"].record(2_500)
    out = orjson.loads(orjson.dumps(counters.as_dict()))
    assert out["invalid"] == {"bad_side": 1} and out["events_invalid"] == 1
    assert 2.4 < out["publish_ms_p99"] < 2.6 and 0.7 < out["build_ms_p99"] < 0.9


def test_write_marks_live_in_the_users_state_directory_unless_told_otherwise(tmp_path) -> None:
    assert load({"XDG_STATE_HOME": "/var/x"}).state_dir == "/var/x/bookcast/md"
    assert load({"BOOKCAST_MD_STATE_DIR": "off"}).state_dir == ""
    assert load({"BOOKCAST_MD_STATE_DIR": str(tmp_path / "md")}).state_dir == str(tmp_path / "md")
    assert (tmp_path / "md").is_dir()


def test_an_unusable_state_directory_names_the_setting(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SettingError, match="BOOKCAST_MD_STATE_DIR"):
        load({"BOOKCAST_MD_STATE_DIR": str(blocker / "md")})


def test_the_xseq_jump_bound_is_a_setting() -> None:
    assert load({}).max_xseq_jump == 1_000_000
    assert load({"BOOKCAST_MD_MAX_XSEQ_JUMP": "5000"}).max_xseq_jump == 5000
    with pytest.raises(SettingError, match="BOOKCAST_MD_MAX_XSEQ_JUMP"):
        load({"BOOKCAST_MD_MAX_XSEQ_JUMP": "0"})


def test_slots_close_within_a_span_no_longer_than_the_window() -> None:
    cfg = load({})
    assert (cfg.window_slots, cfg.slot_span_ms, cfg.fetch_wait_ms) == (8, 0, 10)
    cfg = load({"BOOKCAST_MD_SLOT_SPAN_MS": "100", "BOOKCAST_WINDOW_MS": "50"})
    assert cfg.slot_span_ms == 50
    with pytest.raises(SettingError, match="BOOKCAST_MD_SLOT_SPAN_MS"):
        load({"BOOKCAST_MD_SLOT_SPAN_MS": "-1"})


def test_heartbeat_takeover_and_adoption_times() -> None:
    cfg = load({})
    assert (cfg.heartbeat_ms, cfg.takeover_ms, cfg.adopt_ms, cfg.group_instance_id) == (100, 500, 1500, "")
    cfg = load({"BOOKCAST_MD_HEARTBEAT_MS": "200"})
    assert (cfg.takeover_ms, cfg.adopt_ms) == (600, 1500)  # at least three beats by default
    cfg = load({"BOOKCAST_MD_ADOPT_MS": "0", "BOOKCAST_MD_GROUP_INSTANCE_ID": "md-1"})
    assert cfg.adopt_ms == 0 and cfg.group_instance_id == "md-1"
    with pytest.raises(SettingError, match="BOOKCAST_MD_TAKEOVER_MS"):
        load({"BOOKCAST_MD_TAKEOVER_MS": "150"})  # one late beat would look like death
    with pytest.raises(SettingError, match="BOOKCAST_MD_ADOPT_MS"):
        load({"BOOKCAST_MD_ADOPT_MS": "300"})  # a cold adopter must not beat a warm standby


def test_a_standby_of_some_or_all_partitions() -> None:
    assert not load({}).standby and load({}).partitions == ()
    assert load({"BOOKCAST_MD_ROLE": "standby"}).standby
    assert load({}, "--standby").standby
    assert load({"BOOKCAST_MD_PARTITIONS": "0,2-4, 7"}).partitions == (0, 2, 3, 4, 7)
    assert load({"BOOKCAST_MD_PARTITIONS": "all"}).partitions == ()
    for env in ({"BOOKCAST_MD_ROLE": "spare"}, {"BOOKCAST_MD_PARTITIONS": "1-x"}):
        with pytest.raises(SettingError, match=next(iter(env))):
            load(env)
