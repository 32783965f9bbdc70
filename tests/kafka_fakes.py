"""A stand-in for confluent_kafka's ``Message``, for tests that feed md_service without a broker."""

from __future__ import annotations

from confluent_kafka import KafkaError


class FakeMessage:
    """What md_service reads of a consumed message: value, key, partition, offset, topic, error."""

    def __init__(
        self,
        value: bytes | None,
        key: bytes | None = b"BTC-USD",
        partition: int = 0,
        offset: int = 0,
        error: KafkaError | None = None,
        topic: str = "t",
    ) -> None:
        self._value, self._key, self._partition = value, key, partition
        self._offset, self._error, self._topic = offset, error, topic

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def topic(self) -> str:
        return self._topic

    def error(self) -> KafkaError | None:
        return self._error
