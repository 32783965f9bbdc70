"""A protocol fuzzer against a real gateway: hypothesis-generated WebSocket frames and HTTP requests.

Every input gets a documented answer: never a 1011 close, an HTTP 500 or ``internal_error``;
after a non-fatal error the same connection still answers a ping with a pong; and the
gateway logs no traceback. CI runs a bounded number of inputs (``BOOKCAST_FUZZ_EXAMPLES``,
default 300 per surface, about 15 s); run it longer with a bigger number, another seed
(``BOOKCAST_FUZZ_SEED``), or ``bookcast chaos --fuzz N``.
"""

from __future__ import annotations

import http.client
import json
import os

import pytest

from bookcast.chaos.fuzz import KNOWN_HTTP, KNOWN_WS, FuzzTally, fuzz
from bookcast.chaos.fuzz_run import PAIRS, FuzzStack
from bookcast.chaos.logscan import find_tracebacks

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("BOOKCAST_FUZZ_EXAMPLES", "300"))
SEED = int(os.environ.get("BOOKCAST_FUZZ_SEED", "0"))


def counters(port: int) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health")
        return json.loads(conn.getresponse().read())["counters"]
    finally:
        conn.close()


@pytest.mark.timeout(max(120, EXAMPLES // 5))
def test_fuzzed_websocket_and_http_input_gets_documented_answers() -> None:
    stack = FuzzStack().start()
    tally = FuzzTally()
    try:
        fuzz(stack.url, stack.port, PAIRS, EXAMPLES, SEED, tally)
        seen = counters(stack.port)
    finally:
        log = stack.stop()
    print(f"fuzz: {tally.ws_inputs + tally.http_inputs} inputs tried: {json.dumps(tally.as_dict())}")
    assert (tally.ws_inputs, tally.http_inputs) == (EXAMPLES + len(KNOWN_WS), EXAMPLES + len(KNOWN_HTTP))
    assert tally.failures == []
    assert [str(t) for t in find_tracebacks("gateway", log)] == []
    assert seen.get("errors_internal_error", 0) == 0 and seen.get("closes_1011", 0) == 0
    # the connection stayed usable: most inputs were answered, then the probe's pong came
    assert tally.ws_answers["pong"] >= EXAMPLES * 3 // 4
    assert tally.ws_answers["error bad_json"] and tally.ws_answers["error bad_request"]
    assert sum(n for status, n in tally.http_answers.items() if status.startswith("4")) >= EXAMPLES // 3
