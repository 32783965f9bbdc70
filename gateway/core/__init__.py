"""The gateway's pure core: the rules, with no sockets, event loop or Redis.

The way websockets keeps ``protocol.py`` apart from ``asyncio/``: everything here is driven
by plain calls and tested that way; the rest of ``gateway`` (hub, fan-out, sessions, links,
HTTP) does the I/O and calls in. ``tests/unit/test_layering.py`` holds it to ``mdcore``'s
rule (the standard library minus I/O and concurrency, ``orjson``, ``sortedcontainers``),
plus ``mdcore`` itself.

- ``replica``: one pair's local stream and the rule for every Redis message
- ``recovery``: what a ``since`` subscribe is answered with, and when a snapshot is cheaper
- ``audit_rule``: whether a quiet replica missed a message
- ``freshness``: whether a pair is live, overdue or stale
- ``limits``, ``overload``: per-connection budgets, admission and the overload decision
- ``frame_clock``: when a window's burst is over (one frame per window)
- ``wsframe``, ``resp``: the WebSocket frame builder and the RESP parser (hand-written for speed)
- ``counters``: the gateway's counters and what each means
"""
