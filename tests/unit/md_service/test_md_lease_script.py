"""md_service.lease_script's pure parts: the scripts' arguments and replies, and the release marker.

The Lua itself runs in Redis: ``tests/integration/test_md_store.py`` drives it on one server and
on a cluster (``test_a_writer_beats_while_it_owns_and_learns_at_once_when_it_does_not``: BEAT;
``test_a_takeover_needs_the_owner_seen_and_a_release_or_an_old_beat``: RELEASE and WATCH), and
``tests/integration/test_md_failover.py`` through whole instances (CLAIMED, adoption).
"""

from __future__ import annotations

from md_service.lease_script import BEAT_LUA, RELEASE_LUA, WATCH_LUA, parse_lost, parse_watch, token_args
from md_service.takeover import RELEASED, OwnerView, is_released, released_marker


def test_token_args_are_partition_then_token_for_each_partition_in_order() -> None:
    assert token_args({3: "md-a/1", 0: "md-a/2"}) == [3, "md-a/1", 0, "md-a/2"]
    assert token_args({}) == []


def test_a_beat_reply_names_each_lost_partition_and_who_owns_it_now() -> None:
    assert parse_lost([b"2", b"md-b/7", b"5", b""]) == {2: "md-b/7", 5: ""}
    assert parse_lost([]) == {}


def test_a_watch_reply_is_one_owner_view_per_partition_on_redis_clock() -> None:
    reply = [b"1700000000123", [b"md-b/7", b"1700000000000", b"released/md-c/1", b"", b"", b""]]
    assert parse_watch([4, 1, 6], reply) == {
        4: OwnerView("md-b/7", 1_700_000_000_000, 1_700_000_000_123),
        1: OwnerView("released/md-c/1", None, 1_700_000_000_123),  # released, never beat
        6: OwnerView("", None, 1_700_000_000_123),  # nobody owns it
    }


def test_the_release_script_writes_the_marker_the_takeover_watch_recognises() -> None:
    # RELEASE_LUA spells the marker's prefix itself; takeover.released_marker must agree with it.
    assert f"'{RELEASED}' .. ARGV[i + 1]" in RELEASE_LUA
    assert released_marker("md-a/1") == RELEASED + "md-a/1" and is_released(released_marker("md-a/1"))
    assert not is_released("md-a/1")


def test_beat_and_watch_read_redis_clock_in_milliseconds() -> None:
    for script in (BEAT_LUA, WATCH_LUA):
        assert "redis.call('TIME')" in script and "math.floor(tonumber(t[2]) / 1000)" in script
