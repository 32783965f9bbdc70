"""The Kafka side of the feed: producer settings, counting confirmations, a full local queue.

The real producer against a broker is tests/integration/test_feed_kafka.py.
"""

import logging

from feed_simulator.delivery import DeliveryCounter, produce, producer_settings
from tests.unit.feed_simulator.feed_fakes import FakeKafkaError, FakeProducer


def test_settings_keep_partitions_in_order_and_batch_for_throughput():
    settings = producer_settings("h:9092")
    assert settings["bootstrap.servers"] == "h:9092"
    assert settings["enable.idempotence"] is True and settings["acks"] == "all"  # xseq stays in order
    assert settings["compression.type"] == "lz4"
    assert settings["linger.ms"] < 50  # well under md_service's shortest window
    assert producer_settings("h:9092", compression="zstd")["compression.type"] == "zstd"


def test_real_events_and_injected_messages_are_counted_apart():
    counter = DeliveryCounter()
    counter.callback(4)(None, None)
    counter.callback(2)(None, None)
    counter.on_injected(None, None)
    counter.on_injected(FakeKafkaError(), None)
    counter.callback(5)(FakeKafkaError(), None)
    assert (counter.delivered_events, counter.delivered_changes, counter.failed_events) == (2, 6, 1)
    assert (counter.delivered_injected, counter.failed_injected) == (1, 1)


def test_failures_are_logged_first_and_then_every_ten_thousandth(caplog):
    counter = DeliveryCounter()
    failed = counter.callback(1)
    with caplog.at_level(logging.ERROR, logger="feed_simulator.producer"):
        for _ in range(20_000):
            failed(FakeKafkaError(), None)
    assert [r.getMessage() for r in caplog.records] == [
        "delivery failed (1 so far): broker said no",
        "delivery failed (10000 so far): broker said no",
        "delivery failed (20000 so far): broker said no",
    ]


def test_a_full_queue_is_served_until_the_message_fits():
    producer = FakeProducer(buffer_every=2)
    counter = DeliveryCounter()
    produce(producer, "t", b"one", b"BTC-USD", counter.callback(1), partition=3)  # 1st call: accepted
    produce(producer, "t", b"two", b"ETH-USD", counter.callback(1), partition=5)  # 2nd full, 3rd in
    assert producer.buffer_errors == 1
    assert producer.produced == [("t", b"BTC-USD", b"one"), ("t", b"ETH-USD", b"two")]
    assert counter.delivered_events == 1  # the poll while the queue was full served the first


class PartitionRecorder(FakeProducer):
    def __init__(self):
        super().__init__()
        self.partitions = []

    def produce(self, topic, value, key, partition, on_delivery):
        super().produce(topic, value, key, partition, on_delivery)
        self.partitions.append(partition)


def test_the_partition_is_passed_on_and_defaults_to_librdkafkas_choice():
    producer = PartitionRecorder()
    counter = DeliveryCounter()
    produce(producer, "t", b"v", b"k", counter.on_injected, partition=2)
    produce(producer, "t", b"v", b"k", counter.on_injected)
    assert producer.partitions == [2, -1]


# --- the delivery counter ---------------------------------------------------------------------


def test_one_callback_per_change_count():
    counter = DeliveryCounter()
    assert counter.callback(3) is counter.callback(3)
    counter.callback(3)(None, None)
    counter.callback(2)(FakeKafkaError(), None)
    assert (counter.delivered_events, counter.delivered_changes, counter.failed_events) == (1, 3, 1)
