"""Observability end to end: every tier's /metrics, the status bus, and /dashboard in a real browser.

The real stack (md_service and a gateway as their commands, the feed in a thread, a short
``bookcast load`` publishing its clients' latency on the status bus) runs on the embedded
servers. Headless Chromium (Debian's package, driven by Playwright) opens ``/dashboard``:
the charts must be drawn (coloured lines on the canvases), the tiles must show numbers,
and those numbers must move from one second to the next. A screenshot goes to
``artifacts/dashboard.png`` (``docs/img/dashboard.png`` with ``BOOKCAST_UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookcast.loopback import free_port
from bookcast.processes import TierProcess
from feed_simulator.config import add_arguments as feed_arguments
from feed_simulator.config import load_config as feed_config
from feed_simulator.producer import run_feed
from tests.integration.stack_helpers import isolated_stack, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("BOOKCAST_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD")
ROOT = Path(__file__).resolve().parents[2]
# Every run saves its screenshot under artifacts/ (ignored by git); the README's copy in docs/img
# is refreshed only on request, so a test run never leaves a tracked file modified.
SCREENSHOT = (
    ROOT / "docs" / "img" / "dashboard.png"
    if os.environ.get("BOOKCAST_UPDATE_SCREENSHOT") == "1"
    else ROOT / "artifacts" / "dashboard.png"
)
# Pixels of the charts' line colours (grid, text and background are all greys).
COLOURED_PIXELS_JS = """id => {
  const c = document.getElementById(id), g = c.getContext("2d");
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
    if (d[i + 3] > 0 && hi - lo > 80) n++;
  }
  return n;
}"""
SECONDS = 15  # of charts after every tier reports: enough to see them move, and for the screenshot
TILES = ("t-e2e", "t-fan", "t-in", "t-frames", "t-fanout", "t-clients")
PILLS = ("link", "redis", "kafka", "md", "gw", "load")


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return sync_playwright


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _published(md_port: int) -> bool:
    try:
        return _scrape(md_port).get(("bookcast_md_deltas_total", ()), 0) > 0
    except OSError:  # the exporter is not listening yet
        return False


def _feed(env: dict[str, str], stop: threading.Event) -> threading.Thread:
    parser = argparse.ArgumentParser()
    feed_arguments(parser)
    args = parser.parse_args(["--rate", "400", "--pairs", ",".join(PAIRS), "--seed", "5"])
    cfg = feed_config(args, {**env, "BOOKCAST_PARTITIONS": "4"})
    thread = threading.Thread(target=run_feed, args=(cfg,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    return thread


def test_metrics_status_bus_and_the_dashboard_in_a_real_browser(infra) -> None:
    sync_playwright = _playwright()
    md_port, gw_port = free_port(), free_port()
    env, _, _ = isolated_stack(
        infra, "obs", PAIRS, 4,
        md_metrics_port=str(md_port), gateway_metrics_port=str(gw_port), md_session_timeout_ms="2000",
    )  # fmt: skip
    stop_feed = threading.Event()
    md = TierProcess("md", "md_service", env=env).start()
    gateway = TierProcess("gateway", "gateway", ["--workers", "1"], env=env, listens=True).start()
    feed = _feed(env, stop_feed)
    load = None
    try:
        wait_until(lambda: _published(md_port), 30, "md_service to publish (and its /metrics to answer)")
        load = TierProcess(
            "load", "clients",
            ["load", "--url", gateway.ws_url, "--redis-url", infra.redis_url, "--connections", "12",
             "--pairs", "2", "--duration", "40", "--processes", "1", "--quiet"],
            env={**env, "BOOKCAST_STATUS_BUS_S": "1"},
        ).start()  # fmt: skip
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{gateway.http_url}/dashboard")
                # every tier reporting: clients' latency on the page means load -> bus -> gateway -> page
                page.wait_for_function(
                    "() => !['–', ''].includes(document.getElementById('t-e2e').textContent)"
                    " && document.getElementById('load').textContent.startsWith('load')"
                    " && Number(document.getElementById('t-clients').textContent) >= 12",
                    timeout=30_000,
                )
                first = _read_page(page)
                later = f"() => Number(document.body.dataset.updates) >= {first['updates'] + SECONDS}"
                page.wait_for_function(later, timeout=(SECONDS + 10) * 1000)
                second = _read_page(page)
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                _assert_page(first, second)
            finally:
                browser.close()
        gw = _scrape(gw_port)
        md_metrics = _scrape(md_port)
    finally:
        stop_feed.set()
        feed.join(timeout=20)
        if load is not None:
            load.stop()
        gateway.stop()
        md.stop()
    _assert_metrics(gw, md_metrics)


def _read_page(page) -> dict:
    return {
        "updates": int(page.evaluate("document.body.dataset.updates")),
        "drawn": int(page.evaluate("document.body.dataset.drawn")),
        "tiles": {tile: page.text_content(f"#{tile}") for tile in TILES},
        "pills": {pill: page.text_content(f"#{pill}") for pill in PILLS},
        "coloured": {
            c: page.evaluate(COLOURED_PIXELS_JS, c) for c in ("c-e2e", "c-stages", "c-tput", "c-fanout")
        },
        "series": page.evaluate(
            "() => Object.fromEntries(['md_events', 'gw_frames', 'e2e_client_p99', 'stage_gateway_p99',"
            " 'stage_close_p99', 'stage_publish_p99'].map(k => [k, (series[k] || []).map(p => p[1])]))"
        ),
        "at": time.monotonic(),
    }


def _assert_page(first: dict, second: dict) -> None:
    assert second["updates"] >= first["updates"] + SECONDS and second["drawn"] > first["drawn"]
    for tile, text in second["tiles"].items():
        assert text not in ("–", ""), f"tile {tile} shows no number: {second['tiles']}"
        float(text.removesuffix("k").removesuffix("M"))  # a number, as the page formats it
    assert second["pills"]["link"] == "live" and second["pills"]["redis"] == "redis up"
    assert second["pills"]["kafka"] == "kafka up"  # md_service's link, from its status on the bus
    assert second["pills"]["md"].startswith("md_service ×1") and second["pills"]["gw"] == "gateways ×1"
    for canvas, pixels in second["coloured"].items():
        assert pixels > 200, f"{canvas}: no chart lines drawn ({second['coloured']})"
    series = second["series"]
    for key, values in series.items():
        recent = [v for v in values[-SECONDS:] if v is not None]
        assert recent, f"{key}: no recent value in {values}"
    moved = [
        key for key, values in series.items() if len({v for v in values[-SECONDS:] if v is not None}) > 1
    ]
    assert len(moved) >= 3, f"the numbers do not move: {series}"
    assert 0 < series["e2e_client_p99"][-1] < 5_000  # ms: plausible for a loaded 2-core machine


def _assert_metrics(gw: dict, md: dict) -> None:
    assert gw[("bookcast_gateway_connections", ())] >= 0
    assert gw[("bookcast_gateway_redis_up", ())] == 1
    assert gw[("bookcast_gateway_frames_total", ())] > gw[("bookcast_gateway_redis_messages_total", ())] > 0
    assert gw[("bookcast_gateway_latency_seconds_count", (("stage", "close_to_gateway"),))] > 0
    assert gw[("bookcast_gateway_snapshots_total", ())] >= 12
    assert md[("bookcast_md_events_total", (("outcome", "applied"),))] > 0
    assert md[("bookcast_md_windows_total", ())] > 0 and md[("bookcast_md_redis_up", ())] == 1
    # timed when Redis acknowledged a window, counted a moment later: at most a window apart
    deltas = md[("bookcast_md_deltas_total", ())]
    assert deltas <= md[("bookcast_md_window_publish_seconds_count", ())] <= deltas + len(PAIRS)
    assert md[("bookcast_md_exchange_to_close_seconds_count", ())] > 0
    assert any(name == "bookcast_md_consumer_lag" for name, _ in md)
