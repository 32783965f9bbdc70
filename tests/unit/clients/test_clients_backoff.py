"""Backoff: exponential, capped at ``maximum``, jittered within ``[c * (1 - jitter), c]``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients import Backoff


def test_ceiling_grows_exponentially_then_caps() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0, factor=2.0, jitter=0.5)
    assert [backoff.ceiling(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.ceiling(10**6) == 10.0  # no overflow for absurd attempt counts


def test_jitter_edges() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.25)
    assert backoff.delay(2, rand=lambda: 0.0) == 4.0
    assert backoff.delay(2, rand=lambda: 0.999999) == pytest.approx(3.0, abs=1e-5)
    no_jitter = Backoff(initial=1.0, maximum=8.0, jitter=0.0)
    assert {no_jitter.delay(3) for _ in range(20)} == {8.0}


@given(
    initial=st.floats(0.001, 5.0),
    spread=st.floats(1.0, 100.0),
    factor=st.floats(1.0, 4.0),
    jitter=st.floats(0.0, 1.0),
    attempt=st.integers(0, 5000),
    r=st.floats(0.0, 1.0, exclude_max=True),
)
def test_delay_is_bounded(initial, spread, factor, jitter, attempt, r) -> None:
    backoff = Backoff(initial=initial, maximum=initial * spread, factor=factor, jitter=jitter)
    ceiling = backoff.ceiling(attempt)
    delay = backoff.delay(attempt, rand=lambda: r)
    assert 0 < ceiling <= backoff.maximum
    assert ceiling * (1 - jitter) - 1e-12 <= delay <= ceiling
    assert backoff.ceiling(attempt + 1) >= ceiling  # never shrinks as failures add up


def test_jitter_spreads_a_herd_of_clients() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(0, rng.random) for _ in range(1000)]
    assert min(delays) >= 0.5 and max(delays) <= 1.0
    assert len({round(d, 6) for d in delays}) > 900  # not one synchronized wave
    assert max(delays) - min(delays) > 0.45


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"initial": 5, "maximum": 1},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_invalid_parameters_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1)
