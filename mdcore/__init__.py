"""The pure core shared by every tier: books, numbers, coalescing, sequencing, checksums, codecs.

Nothing in this package opens a socket, starts an event loop or imports a Kafka,
Redis or WebSocket library (``tests/unit/test_layering.py`` enforces it), so all of
it is tested with plain function calls and behaves the same in md_service, the
gateway and the clients.
"""
