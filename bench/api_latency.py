"""Check API latency: p50/p99 of GET /v1/check at a steady request rate (default 2,000 requests/s).

What it runs: its own broker on a free loopback port (data in a temporary folder), the topics, a
blocks topic holding --blocks blocks (every third scoped to calls to Australia, as
`au.cli_not_permitted` makes them) and an inventory of 5,000 numbers, then `cidwatch api` as a
subprocess, and once /readyz says ready, an open-loop load generator in this process: requests are
scheduled at fixed times (1/rate apart) over --connections keep-alive HTTP/1.1 connections, and a
request's latency runs from its scheduled time to the last byte of its answer, so a stalled server
or a slow client is counted, not hidden (no coordinated omission). Queries mix blocked and free
caller IDs, with and without a destination. Every answer must be 200 and is checked against the
blocks written. The API's CPU over the run is read from /proc, with the machine's, so the figure can be
read against what the API got on a shared machine.

Run: .venv/bin/python bench/api_latency.py [--rate 2000] [--seconds 30] [--blocks 20000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fill(settings, n: int) -> list[str]:
    """Write `n` blocks (each third scoped to Australia) and an inventory; return the blocked CLIs."""
    from cidwatch.produce import produce_records
    from rules.decision import block_key
    from rules.inventory import Inventory, InventoryEntry
    from streams.inventory_topic import push

    clis, records = [], []
    for i in range(n):
        cli = f"+3314{i:07d}"
        scope = {"destination_country": "AU"} if i % 3 == 0 else {}
        decision = {"id": f"b{i}", "kind": "block", "rule": "au.cli_not_permitted" if scope else "cli.not_authorized",
                    "severity": "critical", "caller_id": cli, "call_id": f"c{i}", "tenant": f"t{i % 7}",
                    "at": "2026-05-04T10:00:00Z", "scope": scope, "until": None, "count": 1, "threshold": None,
                    "message": "bench block", "source": "bench"}
        records.append((block_key(cli, decision["rule"], scope).encode(), json.dumps(decision).encode()))
        clis.append(cli)
    produce_records(settings, records, progress=False, topic=settings.topic("blocks"))
    # An inventory as large as one record may be (the producer's 1 MiB request limit): 5,000 numbers.
    push(settings, Inventory([InventoryEntry(c, "claimed", tenant="t0") for c in clis[:5000]]))
    return clis


def queries(blocked: list[str], n: int, seed: int = 7) -> list[tuple[str, bool]]:
    """(path, expected allowed) pairs: half blocked CLIs, half free ones; half with a destination."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            i = rng.randrange(len(blocked))
            cli = blocked[i]
            scoped = i % 3 == 0
        else:
            cli, scoped = f"+3315{rng.randrange(10_000_000):07d}", False
            i = -1
        if rng.random() < 0.5:
            dest = "+61291234567" if rng.random() < 0.5 else "+442071838750"
            allowed = i < 0 or (scoped and dest.startswith("+44"))
            out.append((f"/v1/check?cli=%2B{cli[1:]}&tenant=t0&destination=%2B{dest[1:]}", allowed))
        else:
            out.append((f"/v1/check?cli=%2B{cli[1:]}&tenant=t0", i < 0))
    return out


async def load(port: int, plan: list[tuple[str, bool]], rate: float, connections: int) -> tuple[list[float], int]:
    """Send `plan` at `rate` requests/s, open loop; return latencies (s) and the number of wrong answers."""
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(connections)]
    latencies: list[float] = []
    wrong = 0

    async def connection(queue: asyncio.Queue) -> None:
        nonlocal wrong
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, path, allowed = item
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await reader.readexactly(length)
            latencies.append(loop.time() - scheduled)
            if not head.startswith(b"HTTP/1.1 200") or json.loads(body)["allowed"] is not allowed:
                wrong += 1
        writer.close()

    tasks = [asyncio.create_task(connection(q)) for q in queues]
    start = loop.time() + 0.1
    for i, (path, allowed) in enumerate(plan):
        at = start + i / rate
        delay = at - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        queues[i % connections].put_nowait((at, path, allowed))
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*tasks)
    return latencies, wrong


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5, help="seconds at the rate before measuring")
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    from cidwatch.dev import broker
    from streams.settings import Settings
    from streams.topics import create_topics

    tmp = Path(tempfile.mkdtemp(prefix="cidwatch-api-bench-"))
    info = broker.start(port=free_port(), data_dir=tmp / "broker", heap="512m")
    api = None
    try:
        settings = Settings(broker=f"kafka://{info.bootstrap}", topic_prefix="bench.")
        create_topics(settings, partitions=8)
        blocked = fill(settings, args.blocks)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "CIDWATCH_API_TOKEN"}
        env.update(CIDWATCH_BROKER=settings.broker, CIDWATCH_TOPIC_PREFIX=settings.topic_prefix)
        api = subprocess.Popen([sys.executable, "-m", "cidwatch", "api", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        began = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    ready = json.loads(response.read())
                    break
            except OSError:
                if time.monotonic() - began > 120:
                    raise SystemExit("the API was not ready after 120 s") from None
                time.sleep(0.2)
        print(f"API ready after {time.monotonic() - began:.1f} s: {ready['blocks_in_force']} blocks, "
              f"{ready['inventory_numbers']} inventory numbers")
        asyncio.run(load(port, queries(blocked, int(args.rate * args.warmup), seed=1), args.rate, args.connections))
        plan = queries(blocked, int(args.rate * args.seconds))
        cpu0, (busy0, total0), t0 = cpu_seconds(api.pid), machine_busy(), time.monotonic()
        latencies, wrong = asyncio.run(load(port, plan, args.rate, args.connections))
        elapsed = time.monotonic() - t0
        cpu1, (busy1, total1) = cpu_seconds(api.pid), machine_busy()
        ms = [v * 1000 for v in latencies]
        print(f"{len(ms)} requests in {elapsed:.1f} s ({len(ms) / elapsed:.0f}/s asked at {args.rate:.0f}/s, "
              f"{args.connections} connections), wrong or non-200 answers: {wrong}")
        print(f"latency ms: p50 {statistics.median(ms):.2f}  p90 {percentile(ms, 0.90):.2f}  "
              f"p99 {percentile(ms, 0.99):.2f}  p99.9 {percentile(ms, 0.999):.2f}  max {max(ms):.2f}")
        print(f"API CPU {100 * (cpu1 - cpu0) / elapsed:.0f}% of one core; machine busy "
              f"{100 * (busy1 - busy0) / (total1 - total0):.0f}% of {os.cpu_count()} cores")
    finally:
        if api is not None:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
        broker.stop(tmp / "broker")


if __name__ == "__main__":
    main()
