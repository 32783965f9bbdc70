"""``/dashboard``: a live latency and fan-out page served by the gateway itself (docs/observability.md).

``aggregate`` holds the pure numbers, ``service`` the I/O (status bus, WebSocket feed, the
page), ``dashboard.html`` the self-contained page (canvas charts, no network beyond the
gateway).
"""
