"""The client side of bookcast: local order books kept equal to the source, ``watch`` and ``load``.

``BookClient`` is the library a trading program drops in (see :mod:`clients.book_client` and
docs/clients.md); ``bookcast watch PAIR`` (:mod:`clients.watch`) shows one pair's live top of
book; ``bookcast load`` (:mod:`clients.load`) is the WebSocket load generator.
"""

from clients.backoff import Backoff
from clients.book_client import BookClient
from clients.config import ClientOptions
from clients.errors import (
    ClientClosedError,
    ClientConnectError,
    ClientError,
    NotConnectedError,
    SubscriptionRefusal,
    SubscriptionRefusedError,
)
from clients.refusal import HandshakeRefusal
from clients.stats import ClientStats
from clients.updates import BookUpdate, UpdateStream
from clients.view import BookLevels, BookView, PriceLevel

__all__ = [
    "Backoff",
    "BookClient",
    "BookLevels",
    "BookUpdate",
    "BookView",
    "ClientClosedError",
    "ClientConnectError",
    "ClientError",
    "ClientOptions",
    "ClientStats",
    "HandshakeRefusal",
    "NotConnectedError",
    "PriceLevel",
    "SubscriptionRefusal",
    "SubscriptionRefusedError",
    "UpdateStream",
]
