"""Creating the events topic before anything produces to it.

The topic must exist with its partition count before the first produce or subscribe:
brokers with topic auto-creation — Tansu among them, even for a metadata request that
only names the topic — would otherwise create it with their own default. So existence is
checked by listing *all* topics, never by asking about this one.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)


def _partition_count(admin: AdminClient, name: str, timeout: float) -> int | None:
    topics = admin.list_topics(timeout=timeout).topics
    meta = topics.get(name)
    return None if meta is None else len(meta.partitions)


def ensure_topic(bootstrap: str, name: str, partitions: int, timeout: float = 10.0) -> int:
    """Create topic ``name`` with ``partitions`` if missing; return its partition count.

    An existing topic is kept as it is (a warning if it has fewer partitions than asked:
    partitions are never added, since that would move keys between them). Raises
    :class:`KafkaException` if the broker does not answer within ``timeout`` seconds.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": log})
    existing = _partition_count(admin, name, timeout)
    if existing is None:
        # replication_factor=-1: the broker's default (1 on a single-node cluster).
        new = NewTopic(name, num_partitions=partitions, replication_factor=-1)
        future = admin.create_topics([new], request_timeout=timeout)[name]
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            existing = _partition_count(admin, name, timeout)  # another process won the race
        else:
            log.info("created topic %s with %d partitions", name, partitions)
            return partitions
    if existing is not None and existing < partitions:
        log.warning(
            "topic %s exists with %d partitions, fewer than the %d asked for; keeping it as it is",
            name,
            existing,
            partitions,
        )
    return existing if existing is not None else partitions
