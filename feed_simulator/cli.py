"""``bookcast feed`` / ``python -m feed_simulator``: run the simulated exchange into Kafka."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import orjson
from confluent_kafka import KafkaException

from feed_simulator.config import parse_config
from feed_simulator.metrics import FeedMetrics, load_metrics_config
from feed_simulator.producer import run_feed
from feed_simulator.recording import RecordingError
from mdcore.settings import SettingError
from mdruntime.logs import setup_logging

log = logging.getLogger("feed_simulator")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C set ``stop`` (a clean, flushed exit); a second one aborts the flush."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; the caller owns ``stop`` then
        return

    def handle(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 all events confirmed, 1 Kafka trouble or lost events, 2 bad settings."""
    setup_logging("feed")
    try:
        cfg = parse_config(argv)
        metrics_cfg = load_metrics_config()
    except SettingError as exc:
        print(f"bookcast feed: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a malformed flag (2, already printed)
        return exc.code if isinstance(exc.code, int) else 2
    stop = threading.Event()
    metrics = FeedMetrics()
    metrics.serve(metrics_cfg)
    try:
        with stop_on_signals(stop):
            report = run_feed(cfg, stop=stop)
    except KafkaException as exc:
        log.error("Kafka at %s failed: %s", cfg.kafka_bootstrap, exc)
        return 1
    except (RecordingError, RuntimeError, OSError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.warning("interrupted again: stopped without waiting for the last deliveries")
        return 130
    finally:
        metrics.close()
    if cfg.json_report:
        Path(cfg.json_report).write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    return 0 if report.failed_events == 0 and report.undelivered_events == 0 else 1
