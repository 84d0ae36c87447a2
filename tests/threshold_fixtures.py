"""Traffic that makes each example threshold pack (rules/packs/{runaway,asr,shortcalls,sequential}.yaml)
fire and clear, one caller ID per pack; shared by the packs' replay tests (tests/rules/test_PREFIX.py) and
their broker test (tests/test_stream_threshold.py), which must find the same decisions."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cidwatch.inputs import RawRecord
from cidwatch.replay import replay
from rules.engine import Engine
from rules.pack import PACKS_DIR, load_packs

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # a Monday, long past: the wall clock lifts what is due
RUNAWAY_CLI = "+33184884100"
ASR_CLI = "+12125550199"
SHORT_CLI = "+442071234567"
SEQUENTIAL_CLI = "+13125550177"
# Runaways that stop calling, the next day (after every other record): one on partition 1 of 4, whose clear a
# later call of another caller ID on that partition makes (event time); one on partition 3, which nothing
# after it reaches but an idle worker's clock. streams/app.py `partition_of` places them.
SILENT_CLI, FOLLOWER_CLI, IDLE_CLI = "+33184884106", "+33184884108", "+33184884110"
HASH_KEY = b"threshold-tests"


def _call(tag: str, n: int, caller: str, at: datetime, destination: str, **fields: Any) -> dict[str, Any]:
    return {"call_id": f"{tag}-{n}", "started_at": at.isoformat().replace("+00:00", "Z"), "caller_id": caller,
            "destination": destination, **fields}


def runaway_records() -> list[dict[str, Any]]:
    """70 calls in 56 s (alert at the 30th, block at the 60th), then one a minute for 12 minutes: back under
    10 a minute from the first of them, cleared five minutes later."""
    out = [_call("run", i, RUNAWAY_CLI, T0 + timedelta(seconds=i * 4 // 5), f"+3361{i:07d}") for i in range(70)]
    out += [_call("run", 100 + i, RUNAWAY_CLI, T0 + timedelta(minutes=2 + i), f"+3362{i:07d}") for i in range(12)]
    return out


def asr_records() -> list[dict[str, Any]]:
    """250 calls in 50 minutes, one in twenty answered (5 %: the alert at the 200th call, min_calls), then
    every call answered until the hour's rate has been above 20 % for 15 minutes."""
    out = [_call("asr", i, ASR_CLI, T0 + timedelta(seconds=12 * i), f"+1312555{i:04d}",
                 answered=i % 20 == 0, duration_s=30 if i % 20 == 0 else 0) for i in range(250)]
    out += [_call("asr", 300 + i, ASR_CLI, T0 + timedelta(minutes=50, seconds=12 * i), f"+1415555{i:04d}",
                  answered=True, duration_s=45) for i in range(150)]
    return out


def shortcalls_records() -> list[dict[str, Any]]:
    """60 answered calls in 30 minutes, every other one under 6 s (50 %: the alert at the 50th answered call),
    then long calls until the hour's share has been under 30 % for 15 minutes."""
    out = [_call("short", i, SHORT_CLI, T0 + timedelta(seconds=30 * i), f"+4479{i:08d}",
                 answered=True, duration_s=3 if i % 2 else 90) for i in range(60)]
    out += [_call("short", 100 + i, SHORT_CLI, T0 + timedelta(minutes=30, seconds=30 * i), f"+4478{i:08d}",
                  answered=True, duration_s=120) for i in range(90)]
    return out


def sequential_records() -> list[dict[str, Any]]:
    """35 calls in a row to one number, ten seconds apart (the alert at the 30th), then calls to other numbers
    for eleven minutes: the run is broken, cleared ten minutes later."""
    start = T0
    out = [_call("seq", i, SEQUENTIAL_CLI, start + timedelta(seconds=10 * i), "+12025550123") for i in range(35)]
    after = start + timedelta(seconds=350)
    out += [_call("seq", 100 + i, SEQUENTIAL_CLI, after + timedelta(minutes=i), f"+1202555{i:04d}")
            for i in range(12)]
    return out


def silent_records() -> list[dict[str, Any]]:
    """Two runaways of 70 calls in 56 s that then make no call at all (each clears by 08:06:48 the next
    day), and one call an hour later from another caller ID on the first one's partition."""
    start = T0 + timedelta(days=1)
    out = [_call(f"silent{n}", i, cli, start + timedelta(seconds=i * 4 // 5), f"+3363{n}{i:06d}")
           for n, cli in enumerate((SILENT_CLI, IDLE_CLI)) for i in range(70)]
    return [*out, _call("follower", 0, FOLLOWER_CLI, start + timedelta(hours=1), "+33640000000")]


SCENARIOS = {"runaway": runaway_records, "asr": asr_records, "shortcalls": shortcalls_records,
             "sequential": sequential_records}


def examples_folder(folder: Path) -> Path:
    """A copy of the shipped packs with the example packs' rows enabled: what a user passes as `--rules DIR`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in PACKS_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    for name in SCENARIOS:
        path = folder / f"{name}.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert document["example"] is True
        for row in document["rules"]:
            row["enabled"] = True
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    if (PACKS_DIR / "tables").is_dir():
        shutil.copytree(PACKS_DIR / "tables", folder / "tables", dirs_exist_ok=True)
    return folder


def all_records() -> list[dict[str, Any]]:
    """Every scenario's records, in event-time order (as a switch emits calls that start and end in turn)."""
    records = [record for scenario in SCENARIOS.values() for record in scenario()] + silent_records()
    return sorted(records, key=lambda record: record["started_at"])


def replayed(records: list[dict[str, Any]], rules: Path | None = None) -> list[dict[str, Any]]:
    """Replay's decisions with the example packs enabled (from a `--rules` folder, or the shipped packs)."""
    pack = load_packs(rules) if rules is not None else load_packs(examples=True)
    engine = Engine(pack, hash_key=HASH_KEY)
    raw = [RawRecord("threshold.jsonl", f"line {i + 1}", r) for i, r in enumerate(records)]
    return [d.to_dict() for d in replay(raw, engine, now=datetime.now(UTC)).decisions]


def of_rule(decisions: list[dict[str, Any]], rule: str) -> list[tuple[str, str, int, str]]:
    """(kind, at, count, call id) of one rule's decisions."""
    return [(d["kind"], d["at"], d["count"], d["call_id"]) for d in decisions if d["rule"] == rule]


TENANT_PACK = """\
rules:
  - id: tenantload.calls_per_minute
    description: One tenant's calls in any minute, over all its caller IDs (a test pack, not shipped).
    kind: threshold
    measure: calls
    key: tenant
    window: {sliding: 60s}
    thresholds: [{at: 40, kind: alert, severity: warning}]
    hysteresis: {clear_at: 5, clear_after: 2m}
    source: tests/threshold_fixtures.py
"""
TENANT_CLIS = ("+33184884200", "+33184884201", "+33184884202")


def tenant_records() -> list[dict[str, Any]]:
    """48 calls of tenant acme in 48 s over three caller IDs (the alert at the 40th), then one a minute for
    five minutes (cleared two minutes after the first), and calls of another tenant that never count."""
    out = [_call("ten", i, TENANT_CLIS[i % 3], T0 + timedelta(seconds=i), f"+3363{i:07d}", tenant="acme")
           for i in range(48)]
    out += [_call("ten", 100 + i, TENANT_CLIS[i % 3], T0 + timedelta(minutes=2 + i), f"+3364{i:07d}",
                  tenant="acme") for i in range(5)]
    out += [_call("ten", 200 + i, TENANT_CLIS[0], T0 + timedelta(seconds=i), f"+3365{i:07d}", tenant="other")
            for i in range(20)]
    return out
