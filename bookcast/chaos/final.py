"""The end of a run: freeze the feed, wait for quiet, compare every copy of every book.

The exchange's books are rebuilt from the Kafka topic (:mod:`bookcast.chaos.source`),
independently of md_service. Compared with them, whole and level by level: md_service's
stored book of every pair, every verifying client's book, and every gateway's REST
``/snapshot/{pair}``, once each has reached md_service's final position.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bookcast.chaos.compare import Divergence, diff_book
from bookcast.chaos.fleet import Fleet
from bookcast.chaos.source import SourceBuilder, read_source, wire_book
from bookcast.chaos.stack import ChaosStack

REST_ATTEMPTS = 5


@dataclass
class FinalCheck:
    divergences: list[Divergence] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)  # books compared, by kind of copy
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)  # md_service's final (epoch, seq)
    source_events: int = 0
    source_replays: int = 0
    quiet_s: float | None = None  # feed frozen -> md_service had applied everything
    synced_s: float | None = None  # feed frozen -> every client and gateway at the final position
    problems: list[str] = field(default_factory=list)


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll a blocking condition in a thread until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.2)
    return False


def _md_caught_up(stack: ChaosStack, ends: dict[int, int]) -> bool:
    try:
        stored = stack.stored_offsets()
    except Exception:
        return False
    return all(stored.get(p, 0) == end for p, end in ends.items())


def _gateways_at(stack: ChaosStack, positions: dict[str, tuple[str, int]]) -> bool:
    for gateway in stack.gateways:
        body = stack.health(gateway)
        if body is None:
            return False
        for pair, info in body.get("pairs", {}).items():
            if pair in positions and (info.get("epoch"), info.get("seq")) != positions[pair]:
                return False
    return True


def _clients_at(fleet: Fleet, positions: dict[str, tuple[str, int]]) -> bool:
    for client in fleet.clients:
        for pair in client.pairs:
            view = client.book(pair)
            if not view.synced or (view.epoch, view.seq) != positions.get(pair):
                return False
    return True


async def final_check(stack: ChaosStack, fleet: Fleet, timeout: float) -> FinalCheck:
    out = FinalCheck()
    assert stack.feed is not None
    stack.feed.freeze()
    frozen = time.monotonic()
    source: SourceBuilder = await asyncio.to_thread(
        read_source, stack.kafka.bootstrap, stack.topic, stack.settings.partitions, allow_replays=True
    )
    ends = source.positions
    if await _until(lambda: _md_caught_up(stack, ends), timeout):
        out.quiet_s = round(time.monotonic() - frozen, 2)
    else:
        out.problems.append(f"md_service had not stored every partition's last offset after {timeout:.0f} s")
    out.source_events, out.source_replays = sum(b.events for b in source.books.values()), source.replays
    truth = {pair: wire_book(src.book, pair) for pair, src in source.books.items()}
    for pair in stack.settings.pairs:
        stored = await asyncio.to_thread(stack.stored, pair)
        out.compared["md_service"] = out.compared.get("md_service", 0) + 1
        if stored is None or pair not in truth:
            out.divergences.append(Divergence("md_service (Redis)", pair, "no stored book or no events"))
            continue
        state, book = stored
        out.positions[pair] = (state.epoch, state.seq)
        if state.xseq != source.books[pair].last_xseq:
            out.divergences.append(
                Divergence(
                    "md_service (Redis)",
                    pair,
                    f"at xseq {state.xseq}, the exchange at {source.books[pair].last_xseq}",
                )
            )
        found = diff_book(
            "md_service (Redis)", pair, truth[pair], (book.wire_levels("b"), book.wire_levels("a"))
        )
        if found:
            out.divergences.append(found)
    everyone = await _until(
        lambda: _clients_at(fleet, out.positions) and _gateways_at(stack, out.positions), timeout
    )
    out.synced_s = round(time.monotonic() - frozen, 2) if everyone else None
    if not everyone:
        out.problems.append(
            f"not every client and gateway reached the final positions within {timeout:.0f} s"
        )
    _compare_clients(fleet, truth, out)
    await _compare_rest(stack, truth, out)
    return out


def _compare_clients(fleet: Fleet, truth: dict, out: FinalCheck) -> None:
    for i, client in enumerate(fleet.clients):
        who = f"client {i}"
        for pair in client.pairs:
            out.compared["clients"] = out.compared.get("clients", 0) + 1
            view = client.book(pair)
            snap = view.as_snapshot()
            if snap is None:
                out.divergences.append(Divergence(who, pair, "not synced at the end"))
                continue
            if (snap.epoch, snap.seq) != out.positions.get(pair):
                out.divergences.append(
                    Divergence(
                        who, pair, f"at {snap.epoch}/{snap.seq}, md_service at {out.positions.get(pair)}"
                    )
                )
                continue
            found = diff_book(who, pair, truth[pair], (snap.bids, snap.asks))
            if found:
                out.divergences.append(found)


async def _compare_rest(stack: ChaosStack, truth: dict, out: FinalCheck) -> None:
    for gateway in stack.gateways:
        who = f"{gateway.name} REST"
        for pair in stack.settings.pairs:
            out.compared["gateways_rest"] = out.compared.get("gateways_rest", 0) + 1
            status, body = 0, None
            for _ in range(REST_ATTEMPTS):
                status, body, retry = await asyncio.to_thread(stack.snapshot, gateway, pair)
                if status not in (429, 503):
                    break
                await asyncio.sleep(max(retry, 0.2))
            if status != 200 or not isinstance(body, dict):
                out.divergences.append(Divergence(who, pair, f"HTTP {status}"))
                continue
            if (body.get("epoch"), body.get("seq")) != out.positions.get(pair):
                out.divergences.append(Divergence(who, pair, f"at {body.get('epoch')}/{body.get('seq')}"))
                continue
            found = diff_book(who, pair, truth[pair], (body.get("bids", []), body.get("asks", [])))
            if found:
                out.divergences.append(found)
