"""Binance Spot market data (REST and WebSocket streams) on top of bookcast's replicas.

Existing programs that read Binance's public market data can read bookcast's books by
changing a base URL (see docs/binance.md). Pure modules decide; ``dialect`` moves bytes:

- ``symbols``: ``BTC-USD`` <-> ``BTCUSD`` / ``btcusd``, 8-decimal strings
- ``update_ids``: ``(epoch, seq)`` -> an update id that never goes back
- ``events``: depthUpdate, partial book, combined wrapper, the 1000 ms fold
- ``feed``: one pair's events, encoded once for all subscribers
- ``streams``: stream names and URLs; ``session``: SUBSCRIBE & co., limits
- ``rest``: ping, time, exchangeInfo, depth, errors and weight headers
- ``config``: settings; ``dialect``: the websockets adapter and the hooks the hub calls
"""
