"""The /book page in a real browser against the real stack (issue 16).

md_service, a gateway and the feed run as their commands on the embedded servers. Headless
Chromium (Debian's package, driven by Playwright, as the dashboard's test does) opens
``/book/BTC-USD``, whose script is the TypeScript client bundled with the page:

1. the book renders (25 levels a side, bid below ask, the spread, live updates);
2. the feed is frozen (SIGSTOP): the page's top 25 levels equal ``GET /snapshot/BTC-USD``
   at the same seq and epoch;
3. the gateway is restarted: the page shows it is reconnecting, then recovers by itself
   (same book, same seq; updates flow again once the feed resumes);
4. a forced gap (a delta two seqs ahead, handed to the page's client) is resynced visibly;
   frozen again, the page equals the source book at the same seq.

The page loads nothing but the gateway's URLs. A screenshot goes to ``artifacts/book.png``
(``docs/img/book.png`` with ``BOOKCAST_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bookcast.processes import TierProcess
from tests.integration.stack_helpers import isolated_stack, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("BOOKCAST_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAIRS = ("BTC-USD", "ETH-USD")
PAIR = "BTC-USD"
DEPTH = 25
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = (
    ROOT / "docs" / "img" / "book.png"
    if os.environ.get("BOOKCAST_UPDATE_SCREENSHOT") == "1"
    else ROOT / "artifacts" / "book.png"
)
WAIT_MS = 60_000  # one bound for every wait on the page


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return sync_playwright


def _snapshot(http_url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{http_url}/snapshot/{PAIR}", timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError):
        return None


def _shown(page) -> dict[str, Any]:
    """The ladder and tiles as the page shows them, read in one instant (a render updates them together)."""
    return page.evaluate(
        """() => ({...window.bookPage.shown(),
                  tiles: Object.fromEntries(['best-bid', 'best-ask', 'spread-tile', 'rate']
                    .map(id => [id, document.getElementById(id).textContent]))})"""
    )


def _same_book(page, http_url: str) -> dict[str, Any]:
    """Wait until the page and GET /snapshot stand at the same seq, then compare their top 25."""
    found: dict[str, Any] = {}

    def equal_seq() -> bool:
        shown, snap = _shown(page), _snapshot(http_url)
        if snap is None or shown["seq"] != snap["seq"] or shown["epoch"] != snap["epoch"]:
            return False
        found.update(shown=shown, snap=snap)
        return True

    wait_until(equal_seq, WAIT_MS / 1000, "the page and GET /snapshot at the same seq")
    shown, snap = found["shown"], found["snap"]
    assert shown["bids"] == snap["bids"][:DEPTH], f"bids differ at seq {snap['seq']}"
    assert shown["asks"] == snap["asks"][:DEPTH], f"asks differ at seq {snap['seq']}"
    assert len(shown["bids"]) == len(shown["asks"]) == DEPTH
    return shown


def _counter(page, name: str) -> int:
    return int(page.text_content(f"#c-{name}") or "0")


def _wait_state(page, state: str) -> None:
    page.wait_for_function(f"document.body.dataset.state === {json.dumps(state)}", timeout=WAIT_MS)


def _wait_seq_beyond(page, seq: int, count: int = 1) -> None:
    page.wait_for_function(
        f"document.body.dataset.state === 'live' && Number(document.body.dataset.seq) >= {seq + count}",
        timeout=WAIT_MS,
    )


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def _assert_routes(http_url: str) -> None:
    """/book and /book/<PAIR> are the page, /book/book_page.js its script; deeper paths are not."""
    for path in ("/book", "/book/", f"/book/{PAIR}", "/book/ETH-USD?depth=10"):
        status, kind, body = _get(http_url + path)
        assert (status, kind) == (200, "text/html; charset=utf-8"), path
        assert b'<script src="/book/book_page.js" defer></script>' in body
    status, kind, body = _get(f"{http_url}/book/book_page.js")
    assert (status, kind) == (200, "text/javascript; charset=utf-8")
    assert body == (ROOT / "gateway" / "book_page.js").read_bytes()
    status, _, body = _get(f"{http_url}/book/{PAIR}/extra")
    assert status == 404 and json.loads(body)["code"] == "not_found"  # the REST API's answer


def test_the_book_page_renders_matches_the_source_and_recovers_by_itself(infra) -> None:
    sync_playwright = _playwright()
    env, _, _ = isolated_stack(
        infra, "book", PAIRS, 2,
        md_metrics_port="0", gateway_metrics_port="0", feed_metrics_port="0",
    )  # fmt: skip
    env["BOOKCAST_PARTITIONS"] = "2"  # the feed writes to the topic's 2 partitions
    md = TierProcess("md", "md_service", env=env).start()
    gateway = TierProcess("gateway", "gateway", ["--workers", "1"], env=env, listens=True).start()
    feed = TierProcess(
        "feed", "feed_simulator", ["--rate", "300", "--pairs", ",".join(PAIRS), "--seed", "16"], env=env
    ).start()
    frozen = False

    def freeze(on: bool) -> None:
        nonlocal frozen
        os.kill(feed.pid, signal.SIGSTOP if on else signal.SIGCONT)
        frozen = on

    restarted: TierProcess | None = None
    try:
        wait_until(lambda: _snapshot(gateway.http_url) is not None, 60, "md_service's first book of BTC-USD")
        _assert_routes(gateway.http_url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1060})
                requests: list[str] = []
                page.on("request", lambda request: requests.append(request.url))
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{gateway.http_url}/book/{PAIR}")

                # 1. it renders, and moves
                _wait_state(page, "live")
                first = _shown(page)
                _wait_seq_beyond(page, first["seq"], 3)
                shown = _shown(page)
                assert len(shown["bids"]) == len(shown["asks"]) == DEPTH
                best_bid, best_ask = Decimal(shown["bids"][0][0]), Decimal(shown["asks"][0][0])
                assert best_bid < best_ask
                prices = [Decimal(p) for p, _ in shown["bids"]]
                assert prices == sorted(prices, reverse=True)
                tiles = shown["tiles"]
                assert (tiles["best-bid"], tiles["best-ask"]) == (shown["bids"][0][0], shown["asks"][0][0])
                assert Decimal(tiles["spread-tile"]) == best_ask - best_bid
                assert float(tiles["rate"]) > 0

                # 2. the feed frozen: the page is the source book at the same seq
                freeze(True)
                at_freeze = _same_book(page, gateway.http_url)
                assert _counter(page, "gaps") == _counter(page, "checksum") == 0

                # 3. the gateway restarted: seen, and recovered without anyone's help
                reconnects = _counter(page, "reconnects")
                gateway.stop()
                _wait_state(page, "reconnecting")
                assert "reconnecting" in (page.text_content("#banner") or "")
                restarted = TierProcess(
                    "gateway", "gateway", ["--workers", "1"], env=env, listens=True, port=gateway.port
                ).start()
                _wait_state(page, "live")
                assert _counter(page, "reconnects") == reconnects + 1
                after_restart = _same_book(page, restarted.http_url)
                # the same stream, never behind (a window in flight at the freeze may land after it)
                assert after_restart["epoch"] == at_freeze["epoch"]
                assert after_restart["seq"] >= at_freeze["seq"]
                freeze(False)
                _wait_seq_beyond(page, after_restart["seq"], 3)  # updates flow again

                # 4. a forced gap is resynced, visibly, and the book is the source's again
                page.evaluate(
                    """pair => {
                      const client = window.bookPage.client, view = client.book(pair);
                      const now = Date.now() * 1e6, seq = view.seq + 2;
                      client.receive(JSON.stringify({type: "delta", pair, epoch: view.epoch, seq,
                        ts: now, xts: now, bids: [], asks: [], checksum: 0}));
                    }""",
                    PAIR,
                )
                page.wait_for_function("Number(document.getElementById('c-gaps').textContent) === 1")
                _wait_state(page, "live")
                assert _counter(page, "resyncs") >= 1
                assert "resync: a seq gap" in (page.text_content("#events") or "")
                freeze(True)
                _same_book(page, restarted.http_url)
                assert _counter(page, "checksum") == 0
                freeze(False)
                resumed = _shown(page)
                _wait_seq_beyond(page, resumed["seq"], 10)  # live again, for the screenshot
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                assert errors == []
                origin = gateway.http_url
                foreign = [
                    url for url in requests
                    if not url.startswith((origin + "/", origin.replace("http:", "ws:") + "/", "data:"))
                ]  # fmt: skip
                assert foreign == [], f"the page loaded from elsewhere: {foreign}"
            finally:
                browser.close()
    finally:
        if frozen:
            os.kill(feed.pid, signal.SIGCONT)
        feed.stop()
        if restarted is not None:
            restarted.stop()
        gateway.stop()
        md.stop()
