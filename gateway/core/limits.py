"""Per-connection and per-process limits: pure rules, time passed in, no I/O.

- :class:`TokenBucket`: inbound ops per connection (``rate`` per second, bursts of ``burst``).
- :class:`RateByAddress`: a token bucket per client address, for REST requests.
- :class:`Admission`: connections per process and per client IP, counted from the handshake
  to the end of the TCP connection.
- :func:`token_ok` / :func:`origin_ok`: the optional handshake checks.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

FULL_RETRY_AFTER_S = 5.0  # Retry-After of a refusal for a full process: another gateway may have room


class TokenBucket:
    """``take()`` succeeds while tokens last; tokens refill at ``rate``/s up to ``burst``."""

    __slots__ = ("_stamp", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        elapsed = now - self._stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self._stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_s(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``take(cost)`` could succeed."""
        tokens = min(self.burst, self.tokens + max(0.0, now - self._stamp) * self.rate)
        return max(0.0, (cost - tokens) / self.rate)

    def full_at(self) -> float:
        """When the bucket is full again if nothing is taken (a full bucket need not be kept)."""
        return self._stamp + (self.burst - self.tokens) / self.rate


class RateByAddress:
    """A :class:`TokenBucket` per client address; ``rate`` 0 means no limit.

    Memory is bounded: at most ``max_addresses`` buckets, least recently used first out. A
    bucket that has refilled is dropped at no cost (a new one starts full); past the bound
    an address still being limited may be forgotten, which only ever errs on the lenient side.
    """

    def __init__(self, rate: float, burst: int, max_addresses: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, address: str, now: float) -> float | None:
        """None if a request from ``address`` may go now (it is counted), else seconds to wait."""
        if self.rate <= 0:
            return None
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.max_addresses:
                self._evict(now)
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
        else:
            self._buckets.move_to_end(address)
        if bucket.take(now):
            return None
        return bucket.wait_s(now)

    def _evict(self, now: float) -> None:
        """Drop from the least recently used end: refilled buckets, and one more if still full."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if len(buckets) < self.max_addresses and oldest.full_at() > now:
                return
            buckets.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: HTTP status, error code (counted) and a message."""

    status: int
    code: str
    message: str
    counter: str
    retry_after_s: float | None = None  # sent as Retry-After (whole seconds) when set


class Admission:
    """Counts admitted connections per process and per IP; ``0`` as a limit means no limit."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._by_key: dict[Hashable, str] = {}
        self._per_ip: dict[str, int] = {}

    @property
    def total(self) -> int:
        return len(self._by_key)

    def per_ip(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)

    def admit(self, key: Hashable, ip: str) -> Refusal | None:
        """Count ``key`` (one connection) from ``ip``, or say why it may not be admitted."""
        if self.max_total and len(self._by_key) >= self.max_total:
            return Refusal(
                503, "too_many_connections", "this gateway is full; try another", "refused_process_limit",
                retry_after_s=FULL_RETRY_AFTER_S,
            )  # fmt: skip
        if self.max_per_ip and self._per_ip.get(ip, 0) >= self.max_per_ip:
            return Refusal(
                429, "too_many_connections", f"at most {self.max_per_ip} connections per address",
                "refused_ip_limit",
            )  # fmt: skip
        self._by_key[key] = ip
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return None

    def release(self, key: Hashable) -> None:
        """Forget ``key``; safe to call for a key never admitted, and twice."""
        ip = self._by_key.pop(key, None)
        if ip is None:
            return
        left = self._per_ip[ip] - 1
        if left:
            self._per_ip[ip] = left
        else:
            del self._per_ip[ip]


def request_token(query: str, authorization: str | None) -> str | None:
    """The token a request carries: ``?token=`` first, else ``Authorization: Bearer <token>``."""
    values = parse_qs(query).get("token")
    if values:
        return values[0]
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def token_ok(token: str | None, allowed: Iterable[str]) -> bool:
    """True if ``token`` is one of ``allowed`` (constant-time per candidate)."""
    if token is None:
        return False
    given = token.encode()
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


def origin_ok(origin: str | None, allowed: frozenset[str]) -> bool:
    """An empty allowlist admits every request; otherwise a present Origin must be listed.

    Browsers always send Origin, so the allowlist stops other web pages from opening
    connections in a user's browser. Programs usually send none; they are admitted (use
    tokens to restrict those).
    """
    if not allowed or origin is None:
        return True
    return origin in allowed
