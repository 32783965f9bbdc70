"""gateway.core.limits: token buckets, admission per process and per IP, the handshake checks."""

from __future__ import annotations

from gateway.core.limits import Admission, TokenBucket, origin_ok, request_token, token_ok


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
