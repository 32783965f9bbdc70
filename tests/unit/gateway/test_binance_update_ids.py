"""Update ids: consecutive inside an epoch, a forward jump across epochs, never backwards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.binance.update_ids import ID_SCALE, MAX_SAFE_ID, UpdateIds, epoch_ms

T0 = 1_732_190_400_000  # an epoch's creation time, ms


def _ids(clock_ms: int = T0 + 10**6) -> UpdateIds:
    return UpdateIds(lambda: clock_ms)


@pytest.mark.parametrize(
    ("epoch", "ms"),
    [
        (f"{T0}-a1b2c3", T0),
        (f"{T0}", T0),
        ("e1", None),
        ("", None),
        ("abc-123", None),
        ("0-ff", None),
        ("-5-ff", None),
        ("١٢٣-ff", None),  # non-ASCII digits
        (f"{MAX_SAFE_ID}-ff", None),  # would not fit below 2**53
    ],
)
def test_epoch_ms_reads_the_creation_time_or_nothing(epoch, ms) -> None:
    assert epoch_ms(epoch) == ms


def test_consecutive_seqs_give_consecutive_ids() -> None:
    ids = _ids()
    epoch = f"{T0}-abc"
    assert ids.update_id(epoch, 41) == T0 * ID_SCALE + 41
    assert ids.update_id(epoch, 42) == ids.update_id(epoch, 41) + 1


def test_a_later_epoch_jumps_forward() -> None:
    ids = _ids()
    old = ids.update_id(f"{T0}-abc", 5_000)
    new = ids.update_id(f"{T0 + 1}-def", 1)  # restarted 1 ms later, at seq 1
    assert new > old + 1


def test_the_mapping_is_the_same_on_every_gateway() -> None:
    a, b = _ids(), _ids(clock_ms=1)
    for seq in (1, 7, 10**6):
        assert a.update_id(f"{T0}-x", seq) == b.update_id(f"{T0}-x", seq)


def test_an_epoch_from_a_clock_that_went_back_still_jumps_forward() -> None:
    ids = _ids()
    last = ids.update_id(f"{T0}-abc", 900)
    first_new = ids.update_id(f"{T0 - 60_000}-def", 1)  # another host's clock, a minute behind
    assert first_new >= last + 2
    assert ids.update_id(f"{T0 - 60_000}-def", 2) == first_new + 1
    assert ids.overrides == 1


def test_a_nonconforming_epoch_uses_the_clock_at_first_sight() -> None:
    ids = _ids(clock_ms=T0 + 5)
    assert ids.update_id("hand-made", 3) == (T0 + 5) * ID_SCALE + 3
    assert ids.update_id("hand-made", 4) == (T0 + 5) * ID_SCALE + 4  # the base stays


def test_rebase_moves_an_epoch_above_every_id_given_out() -> None:
    ids = _ids()
    epoch = f"{T0}-abc"
    top = ids.update_id(epoch, 50)
    rebased = ids.rebase(epoch, 40)  # the book went back to seq 40
    assert rebased >= top + 2
    assert ids.update_id(epoch, 41) == rebased + 1


def test_ids_are_exact_in_json_doubles_until_the_year_2255() -> None:
    year_2255_ms = 9_000_000_000_000
    assert year_2255_ms * ID_SCALE + 10**9 < MAX_SAFE_ID
    assert epoch_ms(f"{year_2255_ms}-ff") == year_2255_ms


@st.composite
def streams(draw):
    """A pair's life: epochs created at increasing times, each publishing at most one seq per 50 ms."""
    created = T0
    life = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        created += draw(st.integers(min_value=1, max_value=10**7))
        seqs = draw(st.integers(min_value=1, max_value=40))
        start = draw(st.integers(min_value=0, max_value=3))
        life.append((f"{created}-{draw(st.text('0123456789abcdef', min_size=6, max_size=6))}", start, seqs))
        created += 50 * (start + seqs)  # the time those windows took
    return life


@given(streams())
def test_ids_strictly_increase_and_are_consecutive_exactly_within_an_epoch(life) -> None:
    ids = _ids()
    previous = None
    for epoch, start, seqs in life:
        for seq in range(start + 1, start + seqs + 1):
            uid = ids.update_id(epoch, seq)
            if previous is not None:
                prev_epoch, prev_seq, prev_id = previous
                assert uid > prev_id
                assert (uid == prev_id + 1) == (epoch == prev_epoch and seq == prev_seq + 1)
            previous = (epoch, seq, uid)
    assert ids.overrides == 0  # the natural mapping sufficed
