"""gateway.core.limits: token buckets, admission per process and per IP, the handshake checks."""

from __future__ import annotations

import pytest

from gateway.core.limits import Admission, RateByAddress, TokenBucket, origin_ok, request_token, token_ok


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 token so far
    assert bucket.take(0.5) is True
    assert bucket.take(100.0) and bucket.take(100.0) and bucket.take(100.0)  # refills up to the burst only
    assert not bucket.take(100.0)


def test_admission_counts_per_process_and_per_ip_and_releases() -> None:
    adm = Admission(max_total=3, max_per_ip=2)
    assert adm.admit("a", "1.1.1.1") is None
    assert adm.admit("b", "1.1.1.1") is None
    refusal = adm.admit("c", "1.1.1.1")
    assert refusal is not None and refusal.status == 429
    assert adm.admit("d", "2.2.2.2") is None
    refusal = adm.admit("e", "3.3.3.3")
    assert refusal is not None and refusal.status == 503 and refusal.code == "too_many_connections"
    adm.release("a")
    adm.release("a")  # twice is harmless
    adm.release("never")
    assert adm.total == 2 and adm.per_ip("1.1.1.1") == 1
    assert adm.admit("f", "1.1.1.1") is None
    unlimited = Admission(0, 0)
    assert all(unlimited.admit(i, "x") is None for i in range(100))


def test_tokens_come_from_the_query_or_a_bearer_header() -> None:
    assert request_token("token=abc&x=1", None) == "abc"
    assert request_token("", "Bearer  xyz ") == "xyz"
    assert request_token("", "Basic xyz") is None
    assert request_token("", None) is None
    assert token_ok("abc", {"abc", "def"}) and not token_ok("abd", {"abc"}) and not token_ok(None, {"abc"})


def test_origin_allowlist() -> None:
    allowed = frozenset({"https://app.example"})
    assert origin_ok("https://app.example", allowed)
    assert not origin_ok("https://evil.example", allowed)
    assert origin_ok(None, allowed)  # programs send no Origin
    assert origin_ok("https://anything", frozenset())


# --- token bucket: refill -----------------------------------------------------------------


def test_tokens_refill_in_fractions_and_never_past_the_burst() -> None:
    bucket = TokenBucket(rate=4.0, burst=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.wait_s(0.0) == pytest.approx(0.25)  # one token at 4/s
    assert not bucket.take(0.125)  # half a token
    assert bucket.take(0.25)  # the two halves add up
    assert bucket.full_at() == pytest.approx(0.75)  # 2 tokens short at 4/s, from 0.25
    assert bucket.wait_s(10.0) == 0.0
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)  # the burst, not 40


def test_a_clock_that_steps_back_refills_nothing_and_takes_nothing_away() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)  # earlier than the last take: no refill
    assert bucket.wait_s(5.0) == pytest.approx(1.0)
    assert bucket.take(11.0)  # one second after the last real stamp


def test_a_cost_above_one_waits_for_that_many_tokens() -> None:
    bucket = TokenBucket(rate=1.0, burst=5, now=0.0)
    assert bucket.take(0.0, cost=4)
    assert not bucket.take(0.0, cost=2)  # one left
    assert bucket.wait_s(0.0, cost=2) == pytest.approx(1.0)
    assert bucket.take(1.0, cost=2)
    assert bucket.tokens == pytest.approx(0.0)


# --- rate by address ----------------------------------------------------------------------


def test_rate_by_address_limits_each_address_apart() -> None:
    limiter = RateByAddress(rate=1.0, burst=2)
    assert limiter.retry_after("a", 0.0) is None and limiter.retry_after("a", 0.0) is None
    assert limiter.retry_after("a", 0.0) == pytest.approx(1.0)
    assert limiter.retry_after("b", 0.0) is None  # another address has its own bucket
    assert limiter.retry_after("a", 0.5) == pytest.approx(0.5)  # a refused request costs nothing
    assert limiter.retry_after("a", 1.0) is None


def test_rate_zero_means_no_limit_and_no_memory() -> None:
    limiter = RateByAddress(rate=0.0, burst=1)
    assert all(limiter.retry_after(f"10.0.0.{i}", 0.0) is None for i in range(50))
    assert len(limiter) == 0


def test_addresses_are_bounded_refilled_ones_go_first_then_the_least_recently_used() -> None:
    limiter = RateByAddress(rate=1.0, burst=2, max_addresses=3)
    for address in ("a", "b", "c"):
        limiter.retry_after(address, 0.0)  # one token each used: none is full before t=1
    limiter.retry_after("a", 0.0)  # "a" is now the most recently used; "b" the least
    limiter.retry_after("d", 0.0)  # full: "b" goes (it was still limited: the lenient side)
    assert len(limiter) == 3
    assert limiter.retry_after("a", 0.0) is not None  # "a" was kept, and is out of tokens
    limiter.retry_after("e", 5.0)  # every bucket refilled by now: all dropped at no cost
    assert len(limiter) == 1
    assert limiter.retry_after("a", 5.0) is None  # a fresh, full bucket


# --- admission and tokens -----------------------------------------------------------------


def test_refusals_say_which_limit_and_only_a_full_process_sends_retry_after() -> None:
    full = Admission(max_total=1, max_per_ip=0).admit
    assert full("k1", "1.1.1.1") is None
    process = full("k2", "2.2.2.2")
    assert process is not None
    assert (process.status, process.counter, process.retry_after_s) == (503, "refused_process_limit", 5.0)
    per_ip = Admission(max_total=0, max_per_ip=1)
    assert per_ip.admit("k1", "1.1.1.1") is None
    refusal = per_ip.admit("k2", "1.1.1.1")
    assert refusal is not None
    assert (refusal.status, refusal.counter, refusal.retry_after_s) == (429, "refused_ip_limit", None)
    assert "1 connections per address" in refusal.message
    per_ip.release("k1")
    assert per_ip.per_ip("1.1.1.1") == 0 and per_ip.admit("k2", "1.1.1.1") is None


@pytest.mark.parametrize(
    ("query", "authorization", "token"),
    [
        ("token=q", "Bearer h", "q"),  # the query wins over the header
        ("x=1&token=a&token=b", None, "a"),  # the first of several
        ("token=a%20b", None, "a b"),  # percent-decoded
        ("token=", "Bearer h", "h"),  # an empty query token is no token
        ("", "bearer h", "h"),  # the scheme is case-insensitive
        ("", "BEARER   h  ", "h"),
        ("", "Bearer", None),
        ("", "Bearer    ", None),
        ("", "Token h", None),
        ("", "", None),
    ],
)
def test_request_token(query: str, authorization: str | None, token: str | None) -> None:
    assert request_token(query, authorization) == token


def test_token_ok_needs_an_exact_match() -> None:
    assert not token_ok("abc", [])  # no token is accepted when none is configured
    assert not token_ok("", ["abc"]) and not token_ok("ab", ["abc"]) and not token_ok("abcd", ["abc"])
    assert token_ok("é", ["x", "é"])  # non-ASCII tokens compare as UTF-8
    assert not token_ok("ABC", ["abc"])


def test_token_bucket_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.wait_s(0.0) == pytest.approx(0.5)
    assert bucket.wait_s(0.25) == pytest.approx(0.25)
    assert bucket.full_at() == pytest.approx(1.0)


def test_rate_by_address_is_bounded_in_memory_and_forgets_refilled_buckets_first() -> None:
    limit = RateByAddress(rate=1.0, burst=2, max_addresses=3)
    assert limit.retry_after("a", 0.0) is None and limit.retry_after("a", 0.0) is None
    assert limit.retry_after("a", 0.0) == pytest.approx(1.0)
    limit.retry_after("b", 5.0)  # "a" has refilled by now
    limit.retry_after("c", 5.0)
    limit.retry_after("d", 5.0)  # at the bound: "a" (full again) goes first
    assert len(limit) == 3
    for i in range(100):
        limit.retry_after(f"x{i}", 5.0)
    assert len(limit) == 3
    assert RateByAddress(rate=0.0, burst=1).retry_after("a", 0.0) is None  # 0: no limit
