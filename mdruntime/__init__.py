"""Shared runtime code of the tiers: what every process does the same way and that does I/O.

``mdcore`` stays pure; code that talks to servers but is not any one tier's (how to reach
Redis, single server or cluster) lives here once. Tiers may import it; it imports only
``mdcore`` (tests/unit/test_layering.py).
"""
