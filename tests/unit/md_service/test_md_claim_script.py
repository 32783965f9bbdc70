"""md_service.claim_script's pure parts: a claim's arguments, its reply, claims merged.

The Lua (CLAIM_LUA, READ_CLAIM_LUA) runs in Redis: ``tests/integration/test_md_store.py``
covers it on one server and on a cluster (``test_reclaiming_takes_only_a_partition_nobody_owns``,
``test_every_write_counts_per_owned_partition_and_a_claim_reads_the_counts``,
``test_a_takeover_needs_the_owner_seen_and_a_release_or_an_old_beat``,
``test_a_follow_point_reads_offsets_pairs_and_books_together``).
"""

from __future__ import annotations

import re

from md_service.claim_script import CLAIM_LUA, Claim, claim_args, merge_claims, new_dataset_id, parse_claim
from md_service.takeover import RELEASED


def test_claim_args_carry_token_mode_dataset_and_deadline_then_each_partition() -> None:
    assert claim_args("md-a/1", [2, 5], "force", "d0") == ["md-a/1", "force", "d0", 0, 2, "", 5, ""]
    # takeover: each partition with the owner the candidate saw
    assert claim_args("md-a/1", {3: "md-b/9"}, "takeover", "d1", 2500) == [
        "md-a/1", "takeover", "d1", 2500, 3, "md-b/9",
    ]  # fmt: skip


def test_a_claim_reply_is_offsets_pairs_dataset_counters_and_previous_owners() -> None:
    reply = [
        [b"2", b"5"],
        [b"41", b""],
        [b"BTC-USD", b"2", b"ETH-USD", b"5"],
        b"ab12",
        [b"7", b"0"],
        [b"md-b/9", b""],
    ]
    claim = parse_claim(reply)
    assert claim.offsets == {2: 41, 5: None}  # "" : nothing stored yet
    assert claim.pairs == {"BTC-USD": 2, "ETH-USD": 5}
    assert claim.datasets == {2: "ab12", 5: "ab12"}
    assert claim.writes == {2: 7, 5: 0} and claim.previous == {2: "md-b/9", 5: ""}


def test_a_read_claim_reply_has_no_dataset_and_so_no_datasets() -> None:
    claim = parse_claim([[b"1"], [b"9"], [], "", [b"0"], [b"md-a/1"]])
    assert claim.offsets == {1: 9} and claim.datasets == {} and claim.pairs == {}


def test_nothing_claimed_is_an_empty_claim() -> None:
    assert parse_claim([[], [], [], b"ab12", [], []]) == Claim({}, {}, {}, {}, {})


def test_merged_claims_hold_every_partition_of_each() -> None:
    a = Claim({0: 1}, {"BTC-USD": 0}, {0: "d0"}, {0: 3}, {0: ""})
    b = Claim({1: None}, {"ETH-USD": 1}, {1: "d1"}, {1: 0}, {1: "md-b/9"})
    merged = merge_claims([a, b])
    assert merged == Claim(
        {0: 1, 1: None}, {"BTC-USD": 0, "ETH-USD": 1}, {0: "d0", 1: "d1"}, {0: 3, 1: 0}, {0: "", 1: "md-b/9"}
    )
    assert a == Claim({0: 1}, {"BTC-USD": 0}, {0: "d0"}, {0: 3}, {0: ""})  # the parts are left as they were
    assert merge_claims([]) == Claim({}, {})


def test_a_dataset_id_is_16_hex_digits_and_new_each_time() -> None:
    ids = {new_dataset_id() for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_a_takeover_recognises_the_release_marker_by_its_whole_prefix() -> None:
    # CLAIM_LUA spells the prefix and its length: both must be takeover.RELEASED's.
    assert f"string.sub(owner, 1, {len(RELEASED)}) ~= '{RELEASED}'" in CLAIM_LUA
