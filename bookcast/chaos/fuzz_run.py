"""``bookcast chaos --fuzz N``: one real gateway on loopback, live books, N fuzzed inputs per surface.

The gateway reads a synthetic md_service's windows from its own embedded Redis (no Kafka
needed), with the op and REST rate limits lifted so the fuzzer tests the answers, not the
limits (those have tests of their own). The same stack serves
tests/integration/test_fuzz_gateway.py.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

from bookcast.bench.fanout_publisher import SyntheticPublisher
from bookcast.chaos.logscan import find_tracebacks
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.processes import TierProcess

PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
WINDOW_S = 0.05


class FuzzStack:
    """Redis, a publisher thread writing a window every 50 ms, and one gateway."""

    def __init__(self) -> None:
        self.prefix = f"fuzz{uuid.uuid4().hex[:8]}"
        self.redis = EmbeddedRedis()
        self.gateway: TierProcess | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FuzzStack:
        self.redis.start()
        publisher = SyntheticPublisher(self.redis.url, self.prefix, PAIRS, seed=5)
        publisher.window()

        def publish() -> None:
            try:
                while not self._stop.wait(WINDOW_S):
                    publisher.window()
            finally:
                publisher.close()

        self._thread = threading.Thread(target=publish, name="fuzz-publisher", daemon=True)
        self._thread.start()
        env = {
            "REDIS_URL": self.redis.url, "BOOKCAST_REDIS_PREFIX": self.prefix,
            "BOOKCAST_PAIRS": ",".join(PAIRS), "BOOKCAST_GATEWAY_METRICS_PORT": "0",
            "BOOKCAST_GATEWAY_OP_RATE": "1000000", "BOOKCAST_GATEWAY_OP_BURST": "1000000",
            "BOOKCAST_GATEWAY_REST_RATE": "0",
        }  # fmt: skip
        self.gateway = TierProcess("gateway", "gateway", ["--workers", "1"], env, listens=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.ws_url

    @property
    def port(self) -> int:
        assert self.gateway is not None
        return self.gateway.port

    def log(self) -> str:
        assert self.gateway is not None
        return Path(self.gateway.log_path).read_text(errors="replace")

    def stop(self) -> str:
        """Stop everything; returns the gateway's whole log (read before it is deleted)."""
        log = ""
        if self.gateway is not None:
            with contextlib.suppress(OSError):
                log = self.log()
            self.gateway.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.redis.stop()
        return log


@contextlib.contextmanager
def fuzz_stack() -> Iterator[FuzzStack]:
    stack = FuzzStack()
    try:
        yield stack.start()
    finally:
        stack.stop()


def main(examples: int, seed: int, json_path: str | None) -> int:
    """Fuzz both surfaces with ``examples`` inputs each; 0 if every rule held and the log is clean."""
    try:
        from bookcast.chaos.fuzz import FuzzTally, fuzz
    except ImportError as exc:  # hypothesis is a dev dependency
        print(f"bookcast chaos --fuzz needs the dev extras (pip install -e '.[dev]'): {exc}", file=sys.stderr)
        return 2
    stack = FuzzStack().start()
    started = time.monotonic()
    failure = ""
    tally = FuzzTally()
    try:
        fuzz(stack.url, stack.port, PAIRS, examples, seed, tally)
    except AssertionError as exc:
        failure = str(exc)
    finally:
        log = stack.stop()
    tracebacks = [str(t) for t in find_tracebacks("gateway", log)]
    body = {
        **tally.as_dict(),
        "seconds": round(time.monotonic() - started, 1),
        "seed": seed,
        "failure": failure,
        "tracebacks": tracebacks,
    }
    print(
        f"fuzzed the gateway: {body['inputs']} inputs ({tally.ws_inputs} WebSocket, "
        f"{tally.http_inputs} HTTP) in {body['seconds']} s"
    )
    print(f"  WebSocket answers: {body['ws_answers']}")
    print(f"  HTTP answers: {body['http_answers']}")
    print(f"  tracebacks in the gateway's log: {len(tracebacks)}")
    for line in [*tracebacks, *([failure] if failure else [])]:
        print(f"  FAIL {line}")
    if json_path:
        Path(json_path).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return 1 if failure or tracebacks else 0
