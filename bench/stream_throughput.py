"""Stream figures on the local broker: one worker's end-to-end throughput, produce-to-decision latency,
and the raw consume rate of a bare aiokafka consumer on the same topic (a Python worker's ceiling).

Run: .venv/bin/python bench/stream_throughput.py [--records N] [--port P]
It starts its own broker on a free loopback port (data in a temporary folder) and stops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402

from bench.generate import cdrs  # noqa: E402
from cidwatch.dev import broker  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import create_topics  # noqa: E402

PREFIX = "bench."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def produce(bootstrap: str, n: int, rate: float = 0) -> float:
    """Send n generated CDRs, as fast as possible or paced at `rate` per second (steady state)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    t0 = time.perf_counter()
    for i, record in enumerate(cdrs(n, seed=5)):
        if rate and i % 50 == 0:
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        producer.send(f"{PREFIX}cdr", key=record["caller_id"].encode(), value=json.dumps(record).encode())
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        admin.close()


def wait_judged(bootstrap: str, n: int, timeout: float) -> float:
    """Seconds until the worker has committed the end of the repartition topic (every CDR judged)."""
    t0 = time.monotonic()
    topic = f"{PREFIX}cdr.by-subject"
    while time.monotonic() - t0 < timeout:
        ends = end_offsets(bootstrap, topic)
        done = committed(bootstrap, f"{PREFIX}cidwatch", topic)
        if sum(ends.values()) >= n and all(done.get(p, -1) >= end for p, end in ends.items()):
            return time.monotonic()
        time.sleep(1)
    raise SystemExit(f"worker did not finish within {timeout:.0f} s")


def read_all(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    out = []
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            out.extend(records)
    consumer.close()
    return out


def latencies(bootstrap: str) -> list[float]:
    """Produce-to-decision: a decision's broker timestamp minus its triggering CDR's produce timestamp."""
    produced = {}
    for record in read_all(bootstrap, f"{PREFIX}cdr"):
        produced[json.loads(record.value)["call_id"]] = record.timestamp
    out = []
    for record in read_all(bootstrap, f"{PREFIX}decisions"):
        decision = json.loads(record.value)
        if decision["call_id"] in produced:
            out.append((record.timestamp - produced[decision["call_id"]]) / 1000)
    return out


async def bare_consume(bootstrap: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(f"{PREFIX}cdr", bootstrap_servers=bootstrap, group_id=f"bare-{time.time()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen = 0
    t0 = time.perf_counter()
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    json.loads(record.value)  # what any worker must do at least
                seen += sum(len(r) for r in batch.values())
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--store", default="rocksdb", choices=("rocksdb", "memory"))
    parser.add_argument("--rate", type=float, default=0,
                        help="produce at this many CDRs/s (steady-state latency) instead of all at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        broker.start(port=port, data_dir=Path(tmp) / "broker", heap="1g")
        bootstrap = f"127.0.0.1:{port}"
        settings = Settings(broker=f"kafka://{bootstrap}", topic_prefix=PREFIX)
        create_topics(settings, partitions=8)
        env = dict(os.environ, CIDWATCH_BROKER=settings.broker, CIDWATCH_TOPIC_PREFIX=PREFIX)
        log = open(Path(tmp) / "worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen([sys.executable, "-m", "cidwatch", "worker", "--store", args.store, "--workdir",
                                   str(Path(tmp) / "w"), "--web-port", str(free_port())], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(12)  # worker joined its group and recovered (empty) tables
            t0 = time.monotonic()
            produce_s = produce(bootstrap, args.records, args.rate)
            t_end = wait_judged(bootstrap, args.records, timeout=7200)
            total = t_end - t0
            lat = sorted(latencies(bootstrap))
            ceiling = asyncio.run(bare_consume(bootstrap, args.records))
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
            broker.stop(Path(tmp) / "broker")
        print(f"{args.records:,} CDRs, one worker ({args.store} tables), 8 partitions, 2 cores:")
        print(f"  produce (kafka-python): {args.records / produce_s:,.0f} CDRs/s")
        print(f"  end to end (first produced -> last judged): {args.records / total:,.0f} CDRs/s ({total:.0f} s)")
        if lat:
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(f"  produce -> decision latency over {len(lat):,} decisions: p50 {statistics.median(lat):.2f} s, "
                  f"p99 {p99:.2f} s " + (f"(produced at {args.rate:g}/s)" if args.rate else
                                          "(under a backlog: the whole file is produced at once)"))
        print(f"  bare aiokafka consume + json.loads: {ceiling:,.0f} CDRs/s")


if __name__ == "__main__":
    main()
