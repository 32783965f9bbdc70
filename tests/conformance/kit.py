"""The conformance kit's file format: cases as JSON lines, and the source books that write them.

A case file (``cases/<name>.jsonl``) is one JSON object per line. The first line describes the
case; every other line is a step, played in order. What the steps mean is in README.md beside
this file; this module writes them (:class:`CaseWriter`) and reads them (:func:`read_case`).
Books are kept with mdcore, so every snapshot, delta and expected checksum is the reference
implementation's unless a case breaks one on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdcore.book import ASK, BID, OrderBook
from mdcore.checksum import CHECKSUM_DEPTH
from mdcore.instruments import instrument
from mdcore.wire_format import book_checksum

FORMAT = 1  # of the case files; bumped if a step changes meaning
CASES = Path(__file__).resolve().parent / "cases"

# The counters a case may expect, cumulative from the client's start (names as in the Python
# client's ClientStats; the TypeScript client's are the same in camelCase).
COUNTERS = (
    "snapshots", "deltas", "stale_deltas", "ignored_deltas", "gaps", "checksum_failures", "resyncs",
    "reconnects", "recoveries", "subscribe_refusals", "errors", "bad_frames",
)  # fmt: skip

Level = list[str]


def encode(message: Any) -> str:
    """A message as the gateway writes it (compact JSON, keys in the documented order)."""
    return json.dumps(message, separators=(",", ":"))


def id_ref(name: str) -> str:
    """The placeholder a frame holds for the id of the client op captured as ``name``."""
    return f"$id:{name}"


@dataclass
class Source:
    """The source of truth for one pair: a book at a stream position, making messages."""

    pair: str
    epoch: str
    seq: int
    book: OrderBook = field(default_factory=OrderBook)
    ts: int = 1_732_190_400_000_000_000

    @classmethod
    def with_depth(cls, pair: str, epoch: str, seq: int, levels: int, mid_units: int = 10_000) -> Source:
        """A book of ``levels`` levels a side around ``mid_units`` price units, quantities varied."""
        source = cls(pair, epoch, seq)
        inst = instrument(pair)
        lot = 10 ** max(inst.qty_decimals - 2, 0)
        for i in range(1, levels + 1):
            source.book.set_level(BID, mid_units - 10 * i, (100 + 7 * i) * lot)
            source.book.set_level(ASK, mid_units + 10 * i, (150 + 5 * i) * lot)
        return source

    @property
    def inst(self):
        return instrument(self.pair)

    def levels(self, side: str, depth: int | None = None) -> list[Level]:
        fp, fq = self.inst.format_price, self.inst.format_qty
        return [[fp(p), fq(q)] for p, q in self.book.top(side, depth)]

    def checksum(self) -> int:
        return book_checksum(self.book, self.inst)

    def _tick(self) -> int:
        self.ts += 100_000_000
        return self.ts

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot", "pair": self.pair, "epoch": self.epoch, "seq": self.seq, "ts": self._tick(),
            "bids": self.levels(BID), "asks": self.levels(ASK), "checksum": self.checksum(),
        }  # fmt: skip

    def delta(self, bids: Iterable[Level] = (), asks: Iterable[Level] = ()) -> dict[str, Any]:
        """Apply absolute changes (a zero quantity deletes), advance seq, return the delta saying so."""
        bids, asks = [list(level) for level in bids], [list(level) for level in asks]
        for side, changes in ((BID, bids), (ASK, asks)):
            for price, qty in changes:
                self.book.set_level(side, self.inst.parse_price(price), self.inst.parse_qty(qty))
        self.seq += 1
        ts = self._tick()
        return {
            "type": "delta", "pair": self.pair, "epoch": self.epoch, "seq": self.seq, "ts": ts,
            "xts": ts - 37_000_000, "bids": bids, "asks": asks, "checksum": self.checksum(),
        }  # fmt: skip

    def move(self, n: int = 1) -> dict[str, Any]:
        """A delta of a few real changes: the best bid's quantity, a new ask level, a bid removed."""
        inst = self.inst
        best_bid, best_ask = self.book.best_bid(), self.book.best_ask()
        assert best_bid is not None and best_ask is not None
        worst_bid = self.book.top(BID)[-1]
        bids = [[inst.format_price(best_bid[0]), inst.format_qty(best_bid[1] + n * inst.lot)]]
        if self.book.depth(BID) > 3:
            bids.append([inst.format_price(worst_bid[0]), inst.format_qty(0)])
        asks = [
            [inst.format_price(best_ask[0] + 1 + (self.seq % 7)), inst.format_qty(3 * 10**inst.qty_decimals)]
        ]
        return self.delta(bids, asks)

    def new_epoch(self, epoch: str, seq: int) -> None:
        self.epoch, self.seq = epoch, seq

    def expected(self) -> dict[str, Any]:
        """What a synced client must hold for this pair."""
        return {
            "synced": True, "epoch": self.epoch, "seq": self.seq, "checksum": self.checksum(),
            "bids": self.levels(BID, CHECKSUM_DEPTH), "asks": self.levels(ASK, CHECKSUM_DEPTH),
            "depth": [self.book.depth(BID), self.book.depth(ASK)],
        }  # fmt: skip


class CaseWriter:
    """Builds one case: steps in order, counters kept cumulatively as the case says they change."""

    def __init__(self, name: str, description: str, pairs: list[str], urls: int = 1, source: str = "crafted"):
        self.header = {
            "kind": "case", "format": FORMAT, "protocol": 1, "name": name, "description": description,
            "pairs": pairs, "urls": urls, "source": source,
        }  # fmt: skip
        self.steps: list[dict[str, Any]] = []
        self.counters = dict.fromkeys(COUNTERS, 0)

    def step(self, kind: str, note: str | None = None, **fields: Any) -> None:
        body: dict[str, Any] = {"kind": kind, **fields}
        if note:
            body["note"] = note
        self.steps.append(body)

    def accept(self, url: int = 0, note: str | None = None) -> None:
        self.step("accept", note, url=url)

    def client_sends(self, op: dict[str, Any], as_: str | None = None, note: str | None = None) -> None:
        fields: dict[str, Any] = {"op": op}
        if as_ is not None:
            fields["as"] = as_
        self.step("client_sends", note, **fields)

    def server_sends(self, *messages: dict[str, Any] | str, note: str | None = None) -> None:
        """One frame: a single message, or an array frame of several (in order)."""
        parts = [m if isinstance(m, str) else encode(m) for m in messages]
        frame = parts[0] if len(parts) == 1 else "[" + ",".join(parts) + "]"
        self.step("server_sends", note, frame=frame)

    def server_sends_raw(self, frame: str, note: str | None = None) -> None:
        self.step("server_sends", note, frame=frame)

    def server_closes(self, code: int, reason: str, note: str | None = None) -> None:
        self.step("server_closes", note, code=code, reason=reason)

    def client_subscribes(self, pairs: list[str], note: str | None = None) -> None:
        self.step("client_subscribes", note, pairs=pairs)

    def expect_quiet(self, note: str | None = None) -> None:
        self.step("expect_quiet", note)

    def count(self, **changes: int) -> None:
        for name, by in changes.items():
            if name not in self.counters:
                raise KeyError(f"no counter {name!r}")
            self.counters[name] += by

    def expect(self, books: dict[str, dict[str, Any]], note: str | None = None, **count: int) -> None:
        """What the client holds now; ``count`` first adds to the counters, which are all expected."""
        self.count(**count)
        self.step("expect", note, books=books, counters=dict(self.counters))

    def lines(self) -> list[str]:
        return [json.dumps(self.header, separators=(",", ":"))] + [
            json.dumps(step, separators=(",", ":")) for step in self.steps
        ]

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"


def unsynced(refused: str | None = None) -> dict[str, Any]:
    """The expectation for a pair the client must not show as live (``refused``: the refusal's code)."""
    return {"synced": False, "refused": refused}


@dataclass(frozen=True)
class Case:
    path: Path
    header: dict[str, Any]
    steps: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.header["name"])


def read_case(path: Path) -> Case:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, steps = lines[0], lines[1:]
    if header.get("kind") != "case" or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a conformance case of format {FORMAT}")
    return Case(path, header, steps)


def all_cases() -> Iterator[Path]:
    return iter(sorted(CASES.glob("*.jsonl")))


def substitute_ids(frame: str, ids: dict[str, Any]) -> str:
    """Replace every ``"$id:NAME"`` JSON string in ``frame`` with the captured id's JSON."""
    for name, value in ids.items():
        frame = frame.replace(json.dumps(id_ref(name)), json.dumps(value))
    return frame


def op_matches(pattern: dict[str, Any], op: dict[str, Any]) -> str | None:
    """None if ``op`` (what the client sent) matches ``pattern``, else what differs.

    ``op`` and ``pair`` must be equal; ``pairs`` must hold the same pairs (in any order);
    ``since`` must be equal, ``null`` meaning no positions at all; other keys are not checked.
    """
    if op.get("op") != pattern["op"]:
        return f"expected a {pattern['op']!r}, the client sent {op}"
    if "pair" in pattern and op.get("pair") != pattern["pair"]:
        return f"expected pair {pattern['pair']!r}, the client sent {op}"
    if "pairs" in pattern and sorted(op.get("pairs") or []) != sorted(pattern["pairs"]):
        return f"expected pairs {sorted(pattern['pairs'])}, the client sent {op}"
    if "since" in pattern:
        want, got = pattern["since"] or {}, op.get("since") or {}
        if want != got:
            return f"expected since {want}, the client sent {op}"
    return None
