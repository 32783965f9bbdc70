"""One pair's simulated exchange book: pure logic, no Kafka, no global random, no clock.

The market owns an :class:`~mdcore.book.OrderBook` and a ``random.Random``; each call of
:meth:`SimulatedMarket.next_changes` performs one exchange event (adds, size changes,
cancels, trades that consume the best levels, moves of the mid price), applies it to its
own book and returns the event's *net* level changes. Replaying those changes in order on
an empty book therefore rebuilds the market's book exactly — which is what md_service does.

Prices live on a coarse grid of ``step`` price units (a multiple of the tick, about 0.1 bp
of the price) indexed by integers: bids sit at indices ``<= mid``, asks at ``>= mid + 1``.
Keeping that invariant is what makes the book impossible to cross: when the mid moves,
the levels on the wrong side of it are removed in the same event. Within one event the
removals come first, so even a consumer checking the book after every single change never
sees it crossed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from mdcore.book import ASK, BID, OrderBook
from mdcore.events import Change
from mdcore.instruments import Instrument, instrument
from mdcore.numbers import parse_units

# Realistic starting prices, as canonical decimal strings of each pair's grid.
START_PRICES: dict[str, str] = {
    "BTC-USD": "64000",
    "ETH-USD": "3200",
    "SOL-USD": "150",
    "XRP-USD": "0.6",
    "ADA-USD": "0.45",
    "DOGE-USD": "0.15",
    "LTC-USD": "80",
    "DOT-USD": "7",
}
SYNTHETIC_START_PRICE = "100"


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Shape of the simulated microstructure; the defaults look like a busy crypto venue."""

    max_levels: int = 500  # hard cap per side
    max_actions: int = 6  # actions per ordinary event: 1..max_actions, uniformly
    seed_chunk: int = 50  # levels per event while publishing the initial book
    step_bp: float = 0.1  # grid spacing of levels, basis points of the start price
    top_notional: int = 10_000  # USD of a typical best level; deeper levels are bigger
    size_slope: float = 0.02  # mean size grows by this fraction per grid step from the top
    move_prob: float = 0.08  # share of actions that move the mid
    trade_prob: float = 0.12  # share of actions that are trades consuming best levels
    band: float = 0.2  # the mid reverts towards its start, staying within +-20 %

    def __post_init__(self) -> None:
        if self.max_levels < 1:
            raise ValueError("max_levels must be at least 1")
        if self.max_actions < 1 or self.seed_chunk < 1:
            raise ValueError("max_actions and seed_chunk must be at least 1")

    @property
    def initial_levels(self) -> int:
        """Depth each side starts with; add/cancel odds pull the live depth back towards it."""
        return max(1, self.max_levels * 4 // 5)


def start_price(inst: Instrument) -> int:
    """The pair's starting price in integer units, on its tick grid."""
    units = parse_units(START_PRICES.get(inst.pair, SYNTHETIC_START_PRICE), inst.price_decimals)
    return max(inst.tick, units - units % inst.tick)


class SimulatedMarket:
    """A random-walk order book for one pair; deterministic given its ``rng``."""

    def __init__(
        self,
        inst: Instrument,
        rng: random.Random,
        params: MarketParams | None = None,
        price: int | None = None,
    ) -> None:
        self.instrument = inst
        self.params = params or MarketParams()
        self.book = OrderBook()
        self._rng = rng
        price = price if price is not None else start_price(inst)
        if price <= 0:
            raise ValueError(f"{inst.pair}: the start price must be positive")
        raw_step = int(price * self.params.step_bp / 10_000)
        self.step = max(inst.tick, raw_step - raw_step % inst.tick)  # price units per grid index
        self._mid = max(1, price // self.step)
        self._mid0 = self._mid
        self._span = self.params.initial_levels * 4 // 3 + 1  # grid steps a side's levels spread over
        lots = self.params.top_notional * 10 ** (inst.price_decimals + inst.qty_decimals)
        self._base_lots = max(1, lots // (price * inst.lot))
        self._touched: dict[tuple[str, int], int] = {}
        self._pending: deque[list[Change]] = deque(self._initial_events())

    # --- public ------------------------------------------------------------------

    @property
    def pair(self) -> str:
        return self.instrument.pair

    @property
    def mid_price(self) -> int:
        """The reference price in units: the grid point just below the middle of the spread."""
        return self._mid * self.step

    @property
    def seeding(self) -> bool:
        """True while the initial book is still being published."""
        return bool(self._pending)

    def next_changes(self) -> list[Change]:
        """Perform one event and return its net changes ``(side, price, qty)``, removals first.

        Never empty; each level at most once. An event is 1..``max_actions`` actions, and a
        trade sweeping levels or a mid move touches a few levels each, so the count of
        changes varies (about 3.4 on average with the defaults). The first events publish
        the initial book, so a consumer reading the topic from the beginning builds it too.
        """
        if self._pending:
            chunk = self._pending.popleft()
            for side, price, qty in chunk:
                self.book.set_level(side, price, qty)
            return chunk
        rng, touched = self._rng, self._touched
        actions = rng.randint(1, self.params.max_actions)
        while True:
            for _ in range(actions):
                self._act()
            changes = self._net()
            touched.clear()
            if changes:
                return changes
            actions = 1  # everything cancelled out (e.g. added then trimmed): try again

    # --- the initial book --------------------------------------------------------

    def _initial_events(self) -> Iterable[list[Change]]:
        """The starting book as chunks of adds, best levels of both sides first."""
        target, rng = self.params.initial_levels, self._rng
        bids: list[Change] = []
        asks: list[Change] = []
        distance = 0
        while len(bids) < target and self._mid - distance >= 1:
            if rng.random() < 0.75:  # the same occupancy as `_span` assumes
                bids.append((BID, (self._mid - distance) * self.step, self._size(distance)))
            distance += 1
        distance = 0
        while len(asks) < target:
            if rng.random() < 0.75:
                asks.append((ASK, (self._mid + 1 + distance) * self.step, self._size(distance)))
            distance += 1
        merged = [change for pair in zip(bids, asks, strict=False) for change in pair]
        merged += bids[len(asks) :] + asks[len(bids) :]
        chunk = self.params.seed_chunk
        return [merged[i : i + chunk] for i in range(0, len(merged), chunk)]

    # --- actions -------------------------------------------------------------------

    def _act(self) -> None:
        rng, params = self._rng, self.params
        side = BID if rng.random() < 0.5 else ASK
        r = rng.random()
        if r < params.move_prob:
            self._move()
        elif r < params.move_prob + params.trade_prob:
            self._trade(side)
        else:
            depth = self.book.depth(side)
            target = params.initial_levels
            # Depth regulates itself around the target: thin books get more adds, fewer cancels.
            fill = depth / target
            p_add = min(0.95, max(0.1, 1.1 - 0.8 * fill))
            u = rng.random()
            if depth == 0 or u < p_add:
                self._add(side)
            elif u < p_add + 0.3 * min(1.0, fill * fill):
                self._cancel(side)
            else:
                self._resize(side)

    def _set(self, side: str, price: int, qty: int) -> None:
        prior = self.book.set_level(side, price, qty)
        self._touched.setdefault((side, price), prior)

    def _index_of(self, side: str, distance: int) -> int:
        return self._mid - distance if side == BID else self._mid + 1 + distance

    def _add(self, side: str) -> None:
        """A new order: often at or just inside the best price, otherwise anywhere in the book."""
        rng, levels = self._rng, self.book.side(side)
        if levels and rng.random() < 0.4:
            best_index = levels.peekitem(0)[0] // self.step
            best_distance = self._mid - best_index if side == BID else best_index - self._mid - 1
            distance = max(0, best_distance - int(rng.expovariate(1.0)))
        else:
            distance = rng.randrange(self._span)
        index = max(1, self._index_of(side, distance))
        price = index * self.step
        self._set(side, price, self.book.qty(side, price) + self._size(distance))
        self._trim(side)

    def _cancel(self, side: str) -> None:
        levels = self.book.side(side)
        if len(levels) <= 1:
            return
        price, _ = levels.peekitem(self._rng.randrange(len(levels)))
        self._set(side, price, 0)

    def _resize(self, side: str) -> None:
        """Orders join or leave an existing level, mostly near the top."""
        levels = self.book.side(side)
        if not levels:
            return
        position = min(len(levels) - 1, int(self._rng.expovariate(0.1)))
        price, qty = levels.peekitem(position)
        lot = self.instrument.lot
        lots = qty // lot
        new_lots = max(1, round(lots * self._rng.lognormvariate(0.0, 0.3)))
        if new_lots == lots:
            new_lots = lots + 1
        self._set(side, price, new_lots * lot)

    def _trade(self, side: str) -> None:
        """An aggressive order consumes the best levels of ``side``; one level always survives."""
        levels = self.book.side(side)
        lot = self.instrument.lot
        remaining = max(1, round(self._base_lots * self._rng.lognormvariate(-0.5, 1.0))) * lot
        while remaining > 0 and levels:
            price, qty = levels.peekitem(0)
            if qty > remaining or len(levels) == 1:
                self._set(side, price, max(lot, qty - remaining))
                return
            self._set(side, price, 0)
            remaining -= qty

    def _move(self) -> None:
        """Random walk of the mid, reverting to the start inside a band; crossing levels go."""
        rng = self._rng
        size = 1 + int(rng.expovariate(1.5))
        pull = (self._mid - self._mid0) / max(1.0, self.params.band * self._mid0)
        up = rng.random() < 0.5 - 0.5 * min(1.0, max(-1.0, pull))
        if up:
            new_mid = self._mid + size
            doomed, survivor_side = ASK, BID
        else:
            new_mid = max(1, self._mid - size)
            doomed, survivor_side = BID, ASK
        if new_mid == self._mid:
            return
        levels = self.book.side(doomed)
        low, high = sorted((self._mid, new_mid))
        # Levels whose index is now on the wrong side of the mid: asks <= new_mid when rising,
        # bids > new_mid when falling. Both are the best levels of the doomed side.
        while levels:
            price, _ = levels.peekitem(0)
            if not low * self.step < price <= high * self.step:
                break
            self._set(doomed, price, 0)
        self._mid = new_mid
        if rng.random() < 0.7:  # fresh liquidity where the price went
            price = self._index_of(survivor_side, 0) * self.step
            self._set(survivor_side, price, self.book.qty(survivor_side, price) + self._size(0))
            self._trim(survivor_side)

    # --- helpers -------------------------------------------------------------------

    def _trim(self, side: str) -> None:
        """Keep at most ``max_levels``: the farthest level goes."""
        levels = self.book.side(side)
        if len(levels) > self.params.max_levels:
            worst, _ = levels.peekitem(-1)
            self._set(side, worst, 0)

    def _size(self, distance: int) -> int:
        """Quantity units of a new level ``distance`` grid steps from the top: bigger further out."""
        mean = self._base_lots * (1.0 + self.params.size_slope * distance)
        lots = max(1, round(mean * self._rng.lognormvariate(-0.125, 0.5)))
        return lots * self.instrument.lot

    def _net(self) -> list[Change]:
        """Touched levels whose quantity differs from the event's start: removals, then the rest."""
        book = self.book
        removals: list[Change] = []
        others: list[Change] = []
        for (side, price), before in self._touched.items():
            after = book.qty(side, price)
            if after == before:
                continue
            (others if after else removals).append((side, price, after))
        return removals + others


def market_rng(seed: int, pair: str) -> random.Random:
    """Each pair's own generator: its events do not depend on which other pairs run."""
    return random.Random(f"bookcast-feed:{seed}:{pair}")


def build_markets(
    pairs: Iterable[str], seed: int, params: MarketParams | None = None
) -> list[SimulatedMarket]:
    """One market per pair (catalogue instruments, realistic start prices), seeded reproducibly."""
    return [SimulatedMarket(instrument(pair), market_rng(seed, pair), params) for pair in pairs]
