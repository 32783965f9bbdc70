"""The embedded servers speak the real protocols and never outlive the process that started them."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bookcast.embedded import EmbeddedInfra
from bookcast.embedded_redis import EmbeddedRedis
from bookcast.managed_process import EmbeddedServerError

pytestmark = pytest.mark.integration

# The consumer settings that make a classic group join on Tansu take ~3 s instead of ~23 s.
FAST_GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000}


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True if the pid runs; a zombie nobody has reaped yet counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_kafka_round_trip_keeps_per_key_order(infra):
    topic = f"embedded-{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": infra.kafka_bootstrap})
    created = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    created[topic].result(timeout=15)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 4

    keys = [f"sym-{i}" for i in range(20)]
    delivery_errors: list[KafkaError] = []

    def on_delivery(err, _msg):
        if err is not None:
            delivery_errors.append(err)

    producer = Producer({"bootstrap.servers": infra.kafka_bootstrap, "linger.ms": 5})
    for seq in range(1000):
        producer.produce(topic, key=keys[seq % len(keys)], value=str(seq), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(15) == 0
    assert delivery_errors == []

    consumer = Consumer(
        {
            "bootstrap.servers": infra.kafka_bootstrap,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST_GROUP,
        }
    )
    seqs_by_key: dict[str, list[int]] = defaultdict(list)
    partitions_by_key: dict[str, set[int]] = defaultdict(set)
    received = 0
    deadline = time.monotonic() + 45
    try:
        consumer.subscribe([topic])
        while received < 1000 and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None, msg.error()
                key = msg.key().decode()
                seqs_by_key[key].append(int(msg.value()))
                partitions_by_key[key].add(msg.partition())
                received += 1
    finally:
        consumer.close()

    assert received == 1000
    for index, key in enumerate(keys):
        assert seqs_by_key[key] == list(range(index, 1000, len(keys))), key
        assert len(partitions_by_key[key]) == 1
    assert len(set().union(*partitions_by_key.values())) > 1  # keys really were spread


def test_redis_publish_subscribe_round_trip(infra):
    channel = f"embedded:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(infra.redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel)
        confirmation = pubsub.get_message(timeout=5)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
        assert client.publish(channel, b"hello") == 1
        message = pubsub.get_message(timeout=5)
        assert message is not None
        assert (message["type"], message["channel"], message["data"]) == (
            "message",
            channel.encode(),
            b"hello",
        )
    finally:
        pubsub.close()
        client.close()


def test_redis_multi_exec(infra):
    key = f"embedded:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(infra.redis_url)
    try:
        with client.pipeline(transaction=True) as pipe:
            pipe.set(key, 1)
            pipe.incrby(key, 41)
            pipe.get(key)
            assert pipe.execute() == [True, 42, b"42"]
    finally:
        client.close()


def test_describe_reports_addresses_pids_and_memory(infra):
    line = infra.describe()
    assert "\n" not in line
    assert infra.kafka_bootstrap in line
    assert infra.redis_url in line
    assert str(infra.kafka.pid) in line
    assert "MiB" in line
    assert infra.kafka.rss_bytes() > 0


def test_stop_leaves_no_process_and_is_idempotent():
    started = EmbeddedInfra().start(timeout=30)
    pids = [started.kafka.pid, started.redis.pid]
    assert all(alive(pid) for pid in pids)
    started.stop()
    assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=10)
    assert [started.kafka.returncode, started.redis.returncode] == [0, 0]  # graceful, no SIGKILL
    assert started.kafka.rss_bytes() is None
    assert not started.kafka.running
    started.stop()  # second stop is a no-op


def test_servers_survive_the_thread_that_started_them():
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; start() must not be tied to it.
    server = EmbeddedRedis()
    starter = threading.Thread(target=server.start)
    starter.start()
    starter.join(timeout=30)
    client = redis.Redis.from_url(server.url)
    try:
        assert client.ping()
        assert server.running
    finally:
        client.close()
        server.stop()


def test_port_conflict_is_a_clear_error():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = EmbeddedRedis(port=squatter.getsockname()[1])
        with pytest.raises(EmbeddedServerError, match="in use") as raised:
            server.start(timeout=10)
    assert str(server.log_path) in str(raised.value)
    assert not server.running
    shutil.rmtree(server.log_path.parent)  # a failed start keeps its log for the user


CHILD = textwrap.dedent(
    """
    import json, signal, sys
    from bookcast.embedded import EmbeddedInfra

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # what the CLI does
    infra = EmbeddedInfra()
    try:
        with infra:
            pids = [infra.kafka.pid, infra.redis.pid]
            dirs = [str(infra.kafka.log_path.parent), str(infra.redis.log_path.parent)]
            print(json.dumps({"pids": pids, "dirs": dirs}), flush=True)
            while True:
                signal.pause()
    finally:
        codes = [infra.kafka.returncode, infra.redis.returncode]
        print(json.dumps({"returncodes": codes}), flush=True)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_servers_die_with_their_parent(sig):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    pids: list[int] = []
    dirs: list[str] = []
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)
        assert ready, "child did not report its server pids"
        report = json.loads(child.stdout.readline())
        pids, dirs = report["pids"], report["dirs"]
        assert all(alive(pid) for pid in pids)

        child.send_signal(sig)
        returncode = child.wait(timeout=15)
        rest = child.stdout.read()

        assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=10)
        if sig == signal.SIGTERM:
            assert returncode == 0
            assert json.loads(rest)["returncodes"] == [0, 0]  # stopped by the child, gracefully
        else:
            assert returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for directory in dirs:  # a SIGKILLed parent cannot remove its servers' temp dirs
            shutil.rmtree(directory, ignore_errors=True)
