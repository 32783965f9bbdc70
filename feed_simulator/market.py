"""One pair's simulated exchange book: pure logic, no Kafka, no global random, no clock.

The market owns a ``random.Random`` and, per side, a dict from grid index to quantity.
Each call of :meth:`SimulatedMarket.next_changes` performs one exchange event — a
matching-engine batch of 1..``max_actions`` actions: orders added at or inside the best
price or deeper in the book, size changes, cancels, trades that consume the best levels,
market makers requoting their top levels, moves of the mid price — applies it and returns
the event's *net* level changes. Replaying those changes in order on an empty book
rebuilds the market's book exactly, which is what md_service does.

Prices live on a coarse grid of ``step`` price units (a multiple of the pair's tick, about
0.1 bp of the price) indexed by integers: bids sit at indices ``<= mid``, asks at
``>= mid + 1``. Keeping that invariant is what makes the book impossible to cross: when
the mid moves, the levels on the wrong side of it are removed in the same event, and
within an event removals come first, so even a consumer checking the book after every
single change never sees it crossed. Quantities are whole lots.

The levels themselves, their best and worst index and the net changes of an event are
:class:`~feed_simulator.grid_book.GridBook`; this module is the order flow that moves them.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from feed_simulator.grid_book import OUTWARD, SIDES, GridBook, GridChange
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

_TABLE = 1024  # pre-drawn lognormal factors per market: a draw costs one getrandbits(10)
ADD_NEAR = 0.6  # share of new orders placed close to the top (the rest anywhere)
CANCEL_NEAR = 0.05  # share of level cancels close to the top (the rest anywhere)
RESIZE_NEAR = 0.8  # share of size changes close to the top
WireChange = tuple[str, str, str]  # (side, price string, qty string)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Shape of the simulated microstructure; the defaults look like a busy crypto venue."""

    max_levels: int = 500  # hard cap per side
    max_actions: int = 6  # actions per event: 1..max_actions, uniformly (mean (1+max)/2)
    seed_chunk: int = 50  # levels per event while publishing the initial book
    step_bp: float = 0.1  # grid spacing of levels, basis points of the start price
    top_notional: int = 10_000  # USD of a typical best level; deeper levels are bigger
    size_slope: float = 0.02  # mean size grows by this fraction per grid step from the top
    move_prob: float = 0.06  # share of actions that move the mid
    trade_prob: float = 0.12  # share of actions that are trades consuming best levels
    requote_prob: float = 0.06  # share of actions where a market maker requotes its top levels
    requote_levels: int = 8  # mean levels a requote touches (uniform 1..2*mean-1)
    band: float = 0.2  # the mid reverts towards its start, staying within +-20 %

    def __post_init__(self) -> None:
        if self.max_levels < 1:
            raise ValueError("max_levels must be at least 1")
        if self.max_actions < 1 or self.seed_chunk < 1 or self.requote_levels < 1:
            raise ValueError("max_actions, seed_chunk and requote_levels must be at least 1")
        if not 0 <= self.move_prob + self.trade_prob + self.requote_prob <= 1:
            raise ValueError("move_prob + trade_prob + requote_prob must be within [0, 1]")

    @property
    def initial_levels(self) -> int:
        """Depth each side starts with; add/cancel odds pull the live depth back towards it."""
        return max(1, self.max_levels * 4 // 5)


def start_price(inst: Instrument) -> int:
    """The pair's starting price in integer units, on its tick grid."""
    units = parse_units(START_PRICES.get(inst.pair, SYNTHETIC_START_PRICE), inst.price_decimals)
    return max(inst.tick, units - units % inst.tick)


class SimulatedMarket(GridBook):
    """A random-walk order book for one pair; deterministic given its ``rng``."""

    def __init__(
        self,
        inst: Instrument,
        rng: random.Random,
        params: MarketParams | None = None,
        price: int | None = None,
    ) -> None:
        self.instrument = inst
        self.params = p = params or MarketParams()
        self._rng = rng
        price = price if price is not None else start_price(inst)
        if price <= 0:
            raise ValueError(f"{inst.pair}: the start price must be positive")
        raw_step = int(price * p.step_bp / 10_000)
        super().__init__(max(inst.tick, raw_step - raw_step % inst.tick))
        self._mid = max(1, price // self.step)
        self._mid0 = self._mid
        self._target = p.initial_levels
        self._span = self._target * 4 // 3 + 1  # grid steps a side's levels spread over
        # Thresholds of one uniform draw choosing the action (see `_act`).
        self._t_move = p.move_prob
        self._t_trade = p.move_prob + p.trade_prob
        self._t_requote = self._t_trade + p.requote_prob
        self._qty_format = f"%d.%0{inst.qty_decimals}d" if inst.qty_decimals else "%d"
        self._qty_unit = 10**inst.qty_decimals
        lots = p.top_notional * 10 ** (inst.price_decimals + inst.qty_decimals)
        self._base_lots = max(1, lots // (price * inst.lot))
        self._sizes = [rng.lognormvariate(-0.125, 0.5) for _ in range(_TABLE)]  # mean 1
        self._factors = [rng.lognormvariate(0.0, 0.3) for _ in range(_TABLE)]  # median 1
        self._price_text: dict[int, str] = {}  # grid index -> canonical price string
        self._pending: deque[list[GridChange]] = deque(self._initial_events())

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
        """Perform one event; its net changes ``(side, price units, qty units)``, removals first.

        Never empty; each level at most once. The first events publish the initial book,
        so a consumer reading the topic from the beginning builds it too.
        """
        step = self.step
        return [(SIDES[s], index * step, qty) for s, index, qty in self._event()]

    def next_wire_changes(self) -> list[WireChange]:
        """The same event as :meth:`next_changes`, as canonical strings ready to encode."""
        prices = self._price_text
        qty_format, unit = self._qty_format, self._qty_unit
        out: list[WireChange] = []
        for s, index, qty in self._event():
            price = prices.get(index)
            if price is None:
                if len(prices) > 100_000:  # the mid wandered far: forget old prices
                    prices.clear()
                price = prices[index] = self.instrument.format_price(index * self.step)
            # The same text as Instrument.format_qty, without two calls per change.
            out.append((SIDES[s], price, qty_format % divmod(qty, unit) if unit > 1 else str(qty)))
        return out

    # --- events ------------------------------------------------------------------

    def _event(self) -> list[GridChange]:
        if self._pending:
            chunk = self._pending.popleft()
            for s, index, qty in chunk:
                self._set(s, index, qty)
            self._touched.clear()
            return chunk
        rng, act = self._rng, self._act
        actions = 1 + int(rng.random() * self.params.max_actions)  # 1..max_actions
        while True:
            for _ in range(actions):
                act(rng)
            changes = self._net()
            if changes:
                return changes
            actions = 1  # everything cancelled out (e.g. resized and back): try again

    def _initial_events(self) -> Iterable[list[GridChange]]:
        """The starting book as chunks of adds, best levels of both sides first."""
        target, rng, mid = self.params.initial_levels, self._rng, self._mid
        sides: list[list[GridChange]] = [[], []]
        for s in (0, 1):
            inner = mid if s == 0 else mid + 1
            distance = 0
            while len(sides[s]) < target and (s == 1 or inner - distance >= 1):
                if rng.random() < 0.75:  # the same occupancy as `_span` assumes
                    sides[s].append((s, inner + OUTWARD[s] * distance, self._size(distance)))
                distance += 1
        bids, asks = sides
        merged = [change for both in zip(bids, asks, strict=False) for change in both]
        merged += bids[len(asks) :] + asks[len(bids) :]
        chunk = self.params.seed_chunk
        return [merged[i : i + chunk] for i in range(0, len(merged), chunk)]

    # --- actions -------------------------------------------------------------------

    def _act(self, rng: random.Random) -> None:
        s = 0 if rng.random() < 0.5 else 1
        r = rng.random()
        if r < self._t_move:
            self._move(rng)
        elif r < self._t_trade:
            self._trade(s, rng)
        elif r < self._t_requote:
            self._requote(s, rng)
        else:
            depth = len(self._levels[s])
            # Depth regulates itself around the target: thin books get more adds, fewer cancels.
            fill = depth / self._target
            p_add = 1.1 - 0.8 * fill
            p_add = 0.95 if p_add > 0.95 else 0.1 if p_add < 0.1 else p_add
            u = rng.random()
            if depth == 0 or u < p_add:
                self._add(s, rng)
            elif u < p_add + 0.3 * (1.0 if fill >= 1.0 else fill * fill):
                self._cancel(s, rng)
            else:
                self._resize(s, rng)

    def _pick_level(self, s: int, rng: random.Random, near: float) -> int | None:
        """An existing level: with odds ``near`` close to the top, else anywhere in the book."""
        levels = self._levels[s]
        if not levels:
            return None
        out, worst = OUTWARD[s], self._worst[s]
        # Order flow concentrates near the top: an exponential distance from the best level.
        offset = int(rng.expovariate(0.1)) if rng.random() < near else int(rng.random() * self._span)
        index = self._best[s] + out * offset
        if (index - worst) * out >= 0:
            return worst
        while index not in levels:
            index += out
        return index

    def _add(self, s: int, rng: random.Random) -> None:
        """A new order: often at or just inside the best price, otherwise anywhere in the book."""
        levels, out = self._levels[s], OUTWARD[s]
        inner = self._mid if s == 0 else self._mid + 1
        u = rng.random()
        if levels and u < ADD_NEAR:
            best_distance = (self._best[s] - inner) * out
            if u < ADD_NEAR / 2:  # improve on or join the best price
                distance = best_distance - int(rng.expovariate(0.5))
                if distance < 0:
                    distance = 0
            else:  # just behind it, where the book should be dense
                distance = best_distance + int(rng.expovariate(0.15))
        else:
            distance = int(rng.random() * self._span)
        index = inner + out * distance
        if index < 1:
            index = 1
        self._set(s, index, levels.get(index, 0) + self._size(distance))
        if len(levels) > self.params.max_levels:
            self._set(s, self._worst[s], 0)

    def _cancel(self, s: int, rng: random.Random) -> None:
        """The last order of a level leaves: the level disappears (one level always stays)."""
        if len(self._levels[s]) > 1:
            index = self._pick_level(s, rng, CANCEL_NEAR)
            if index is not None:
                self._set(s, index, 0)

    def _resize(self, s: int, rng: random.Random) -> None:
        """Orders join or leave an existing level, mostly near the top."""
        index = self._pick_level(s, rng, RESIZE_NEAR)
        if index is not None:
            self._scale(s, index, self._factors[rng.getrandbits(10)])

    def _scale(self, s: int, index: int, factor: float) -> None:
        lot = self.instrument.lot
        lots = self._levels[s][index] // lot
        new_lots = int(lots * factor + 0.5) or 1
        self._set(s, index, (new_lots if new_lots != lots else lots + 1) * lot)

    def _requote(self, s: int, rng: random.Random) -> None:
        """A market maker refreshes its ladder: the best few levels of one side change size."""
        levels = self._levels[s]
        if not levels:
            return
        count = 1 + int(rng.random() * (2 * self.params.requote_levels - 1))
        out, index, worst = OUTWARD[s], self._best[s], self._worst[s]
        factors = self._factors
        while count:
            if index in levels:
                self._scale(s, index, factors[rng.getrandbits(10)])
                count -= 1
            if index == worst:
                return
            index += out

    def _trade(self, s: int, rng: random.Random) -> None:
        """An aggressive order consumes the best levels of side ``s``; one level always survives."""
        levels = self._levels[s]
        lot = self.instrument.lot
        remaining = max(1, round(self._base_lots * rng.lognormvariate(-0.5, 1.0))) * lot
        while remaining > 0 and levels:
            index = self._best[s]
            qty = levels[index]
            if qty > remaining or len(levels) == 1:
                self._set(s, index, max(lot, qty - remaining))
                return
            self._set(s, index, 0)
            remaining -= qty

    def _move(self, rng: random.Random) -> None:
        """Random walk of the mid, reverting to the start inside a band; crossing levels go."""
        size = 1 + int(rng.expovariate(1.5))
        pull = (self._mid - self._mid0) / max(1.0, self.params.band * self._mid0)
        if rng.random() < 0.5 - 0.5 * min(1.0, max(-1.0, pull)):
            new_mid, doomed, survivor = self._mid + size, 1, 0
        else:
            new_mid, doomed, survivor = max(1, self._mid - size), 0, 1
        if new_mid == self._mid:
            return
        levels = self._levels[doomed]
        # Levels now on the wrong side of the mid: asks <= new_mid when rising, bids > new_mid
        # when falling. Both are the best levels of the doomed side.
        while levels:
            best = self._best[doomed]
            if (best <= new_mid) if doomed == 1 else (best > new_mid):
                self._set(doomed, best, 0)
            else:
                break
        self._mid = new_mid
        if rng.random() < 0.7:  # fresh liquidity where the price went
            index = new_mid if survivor == 0 else new_mid + 1
            survivors = self._levels[survivor]
            self._set(survivor, index, survivors.get(index, 0) + self._size(0))
            if len(survivors) > self.params.max_levels:
                self._set(survivor, self._worst[survivor], 0)

    def _size(self, distance: int) -> int:
        """Quantity units of a new order ``distance`` grid steps from the top: bigger further out."""
        mean = self._base_lots * (1.0 + self.params.size_slope * distance)
        lots = int(mean * self._sizes[self._rng.getrandbits(10)] + 0.5) or 1
        return lots * self.instrument.lot


def market_rng(seed: int, pair: str) -> random.Random:
    """Each pair's own generator: its events do not depend on which other pairs run."""
    return random.Random(f"bookcast-feed:{seed}:{pair}")


def build_markets(
    pairs: Iterable[str], seed: int, params: MarketParams | None = None
) -> list[SimulatedMarket]:
    """One market per pair (catalogue instruments, realistic start prices), seeded reproducibly."""
    return [SimulatedMarket(instrument(pair), market_rng(seed, pair), params) for pair in pairs]
