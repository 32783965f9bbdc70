"""``bookcast md`` / ``python -m md_service``: run one md_service instance."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from md_service.config import add_arguments, load_config
from md_service.dead_letter import DeadLetters
from md_service.heap import settle_heap
from md_service.kafka_source import KafkaSource
from md_service.metrics import MdMetrics, load_metrics_config
from md_service.redis_store import RedisStore
from md_service.service import MdService
from md_service.status import StatusPublisher, load_status_config
from mdcore.redis_layout import RedisLayout
from mdcore.settings import SettingError
from mdruntime.logs import setup_logging

log = logging.getLogger("md_service")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bookcast md", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging("md")
    try:
        cfg = load_config(args)
        metrics_cfg, status_cfg = load_metrics_config(), load_status_config()
    except SettingError as exc:
        print(f"bookcast md: {exc}", file=sys.stderr)
        return 2
    store = RedisStore(
        cfg.redis_url, RedisLayout(cfg.redis_prefix, cfg.topic_partitions), cfg.topic,
        cfg.history, cfg.redis_timeout_ms / 1000, cfg.redis_cluster,
    )  # fmt: skip
    dead_letters = (
        DeadLetters(cfg.kafka_bootstrap, cfg.dead_letter_topic, cfg.instance)
        if cfg.dead_letter_topic
        else None
    )
    service = MdService(
        cfg,
        store,
        lambda on_assign, on_revoke: KafkaSource(cfg, on_assign, on_revoke, group=not cfg.standby),
        dead_letters=dead_letters,
    )
    MdMetrics().bind(service).serve(metrics_cfg)
    status = StatusPublisher(service, cfg.redis_url, cfg.redis_prefix, status_cfg, cfg.redis_cluster).start()
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    log.info(
        "instance %s consuming %s %s; windows of %d ms; publishing to %s under %r%s",
        cfg.instance, cfg.topic,
        f"as a hot standby of partitions {list(cfg.partitions) or 'all'}" if cfg.standby
        else f"as group {cfg.group_id}",
        cfg.window_ms, cfg.redis_url, cfg.redis_prefix,
        f"; dead letters to {cfg.dead_letter_topic}" if cfg.dead_letter_topic else "",
    )  # fmt: skip
    settle_heap()
    service.run()
    status.stop()
    log.info("stopped")
    return 0
