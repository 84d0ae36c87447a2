"""bench/generate.py writes valid numbers, and traffic that makes the rules fire (issue "Honest benchmark data")."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import yaml

from bench import generate
from bench.generate import FR_NPV_PREFIXES, cdrs, inventory_rows, write_inventory, write_jsonl
from cidwatch.inputs import RawRecord
from cidwatch.replay import replay
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.pack import load_packs

N = 50_000
FIELDS = {"call_id", "started_at", "direction", "caller_id", "destination", "answered", "duration_s", "sip_code",
          "attestation", "tenant"}
PARIS = ZoneInfo("Europe/Paris")


def parsed(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


def valid(number: str) -> bool:
    parsed_number = parsed(number)
    return parsed_number is not None and phonenumbers.is_valid_number(parsed_number)


def toll_free(number: str) -> bool:
    parsed_number = parsed(number)
    return (parsed_number is not None and phonenumbers.is_valid_number(parsed_number)
            and phonenumbers.number_type(parsed_number) == phonenumbers.PhoneNumberType.TOLL_FREE)


def calling_code(number: str) -> int | None:
    parsed_number = parsed(number)
    return None if parsed_number is None else parsed_number.country_code


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(cdrs(N))


@pytest.fixture(scope="module")
def outbound(records: list[dict]) -> list[dict]:
    return [r for r in records if r["direction"] == "outbound"]


@pytest.fixture(scope="module")
def clis(outbound: list[dict]) -> dict[str, bool]:
    """Distinct outbound caller IDs -> phonenumbers validity."""
    return {cli: valid(cli) for cli in {r["caller_id"] for r in outbound}}


def test_record_shape_and_order(records: list[dict]) -> None:
    assert len(records) == N
    assert all(set(r) == FIELDS for r in records)
    assert all(r["started_at"].endswith("Z") for r in records)
    times = [datetime.fromisoformat(r["started_at"][:-1] + "+00:00") for r in records]
    assert times == sorted(times)
    assert (times[-1] - times[0]).days == 2  # spread over 3 days
    assert len({r["call_id"] for r in records}) == N
    assert {r["tenant"] for r in records} == {"acme", "globex", "initech"}


def test_most_caller_ids_are_valid_but_not_all(clis: dict[str, bool]) -> None:
    share = sum(clis.values()) / len(clis)
    assert len(clis) > 2_500
    assert 0.95 <= share <= 0.99, share
    invalid = [cli for cli, ok in clis.items() if not ok]
    assert any(not cli.startswith("+") for cli in invalid)  # missing "+"
    assert any(any(c.isalpha() for c in cli) for cli in invalid)  # letters


def test_every_calling_code_used_has_valid_numbers(records: list[dict], clis: dict[str, bool]) -> None:
    destinations = {r["destination"] for r in records[::10]}
    assert sum(map(valid, destinations)) / len(destinations) >= 0.99
    valid_codes = {calling_code(n) for n in destinations if valid(n)} | {
        calling_code(cli) for cli, ok in clis.items() if ok}
    used = {calling_code(n) for n in destinations | set(clis)} - {None}
    assert {1, 33, 44, 49, 61} <= valid_codes
    assert used <= valid_codes, used - valid_codes
    for region in ("US", "CA", "GB", "FR", "DE", "AU"):
        assert any(phonenumbers.region_code_for_number(parsed(cli)) == region for cli, ok in clis.items() if ok), region


def test_toll_free_caller_ids_and_destinations(outbound: list[dict], clis: dict[str, bool]) -> None:
    free = {cli for cli, ok in clis.items() if ok and toll_free(cli)}
    assert 0.03 <= len(free) / len(clis) <= 0.10
    assert {calling_code(cli) for cli in free} >= {1, 33, 44, 61}
    pairs = [(r["caller_id"], r["destination"]) for r in outbound if r["caller_id"] in free]
    assert any(cli.startswith("+1") and dest.startswith("+1") and toll_free(dest) for cli, dest in pairs)
    assert any(calling_code(cli) != calling_code(dest) for cli, dest in pairs)  # toll-free called abroad
    destinations = [r["destination"] for r in outbound[::5]]
    assert 0.01 <= sum(map(toll_free, destinations)) / len(destinations) <= 0.10


def test_caller_ids_that_may_not_be_presented(clis: dict[str, bool]) -> None:
    valid_clis = [cli for cli, ok in clis.items() if ok]
    assert any(cli.startswith(("+44870", "+44871", "+449")) for cli in valid_clis)  # UK 0870/09
    assert any(cli.startswith("+6113") for cli in valid_clis)  # AU 13/1300
    assert any(cli.startswith("+33") and cli[3:].startswith(FR_NPV_PREFIXES) for cli in valid_clis)  # FR NPV


def test_busy_french_caller_id_passes_250_calls_in_a_paris_day(outbound: list[dict]) -> None:
    per_day: Counter[tuple[str, object]] = Counter()
    for r in outbound:
        cli = r["caller_id"]
        if cli.startswith("+33") and valid(cli) and not cli[3:].startswith(FR_NPV_PREFIXES):
            moment = datetime.fromisoformat(r["started_at"][:-1] + "+00:00")
            per_day[cli, moment.astimezone(PARIS).date()] += 1
    busy = {cli for (cli, _day), calls in per_day.items() if calls > 250}
    assert 1 <= len(busy) <= 10, busy


def test_npv_prefixes_mirror_the_engine() -> None:
    numbers = pytest.importorskip("rules.numbers")
    assert numbers.FR_NPV_PREFIXES == FR_NPV_PREFIXES


def test_each_caller_id_has_one_tenant(outbound: list[dict]) -> None:
    tenants = defaultdict(set)
    for r in outbound:
        tenants[r["caller_id"]].add(r["tenant"])
    assert all(len(names) == 1 for names in tenants.values())


def test_inbound_calls_to_french_caller_ids(records: list[dict], clis: dict[str, bool]) -> None:
    inbound = [r for r in records if r["direction"] == "inbound"]
    assert 0.005 <= len(inbound) / len(records) <= 0.05
    assert all(r["destination"].startswith("+33") and valid(r["destination"]) for r in inbound)
    assert all(valid(r["caller_id"]) for r in inbound)
    assert any(not r["answered"] for r in inbound) and any(r["answered"] for r in inbound)
    assert len({r["destination"] for r in inbound} & set(clis)) > 50


def test_inventory_covers_most_caller_ids_with_their_tenant(outbound: list[dict], clis: dict[str, bool]) -> None:
    rows = inventory_rows()
    assert all(set(row) == {"number", "source", "tenant", "cnam"} for row in rows)
    assert {row["source"] for row in rows} == {"claimed", "ported"}
    assert all(valid(row["number"]) for row in rows)
    listed = {row["number"]: row for row in rows}
    valid_clis = [cli for cli, ok in clis.items() if ok]
    missing = [cli for cli in valid_clis if cli not in listed]
    assert 0.01 <= len(missing) / len(valid_clis) <= 0.06
    tenant_of = {r["caller_id"]: r["tenant"] for r in outbound}
    assert all(listed[cli]["tenant"] == tenant_of[cli] for cli in valid_clis if cli in listed)
    nanp = [row for row in rows if row["number"].startswith("+1") and not toll_free(row["number"])]
    assert any(row["cnam"] for row in nanp) and any(row["cnam"] is None for row in nanp)


def test_inventory_file_is_accepted(tmp_path) -> None:
    path = write_inventory(tmp_path / "inventory.yaml")
    document = yaml.safe_load(path.read_text())
    assert document["numbers"] == inventory_rows()
    inventory = pytest.importorskip("rules.inventory")
    assert len(inventory.load_inventory(path)) == len(document["numbers"])


def test_deterministic_per_seed(tmp_path) -> None:
    assert list(cdrs(3_000, seed=3)) == list(cdrs(3_000, seed=3))
    assert list(cdrs(3_000, seed=3)) != list(cdrs(3_000, seed=4))
    assert inventory_rows(seed=3) == inventory_rows(seed=3) != inventory_rows(seed=4)
    first = write_jsonl(tmp_path / "a.jsonl", 2_000, seed=7).read_bytes()
    assert first == write_jsonl(tmp_path / "b.jsonl", 2_000, seed=7).read_bytes()
    assert first.count(b"\n") == 2_000


def test_generation_is_fast() -> None:
    generate._pool(9, 3000)  # pool and blocks are built once per process
    started = time.perf_counter()
    count = sum(1 for _ in cdrs(100_000, seed=9))
    rate = count / (time.perf_counter() - started)
    assert rate > 50_000, f"{rate:,.0f} records/s"  # ~400,000/s measured; no per-record phonenumbers call


def test_episodic_caller_ids_are_a_small_listed_share(records: list[dict]) -> None:
    episodic = {cli.number for cli in generate._pool(1, 3000).episodic}
    assert len(episodic) == len(generate.EPISODES) and all(map(valid, episodic))
    listed = {row["number"] for row in inventory_rows()}
    assert episodic <= listed  # never blocked as not authorised: only the example rules act on them
    calls = Counter(r["caller_id"] for r in records if r["caller_id"] in episodic)
    assert set(calls) == episodic
    assert 0.005 <= calls.total() / len(records) <= 0.02, calls


def test_example_threshold_packs_fire_and_clear(records: list[dict], tmp_path) -> None:
    """Replayed with every example threshold pack enabled (`load_packs(examples=True)`, as the engine
    benchmark's --examples runs them), each example rule alerts, blocks where its pack has a block level,
    and clears by its hysteresis (a block lifted before its `for` ends, not by time)."""
    packs = load_packs(examples=True)
    default = load_packs()
    examples = [rule for rule_id, rule in packs.rules.items() if rule_id not in default]
    assert len(examples) >= 4
    engine = Engine(packs, load_inventory(write_inventory(tmp_path / "inventory.yaml")))
    raw = [RawRecord("bench.jsonl", f"line {i + 1}", record) for i, record in enumerate(records)]
    decisions = replay(raw, engine, now=generate.START).decisions  # only event time lifts blocks
    for rule in examples:
        made = [d for d in decisions if d.rule == rule.id]
        kinds = Counter(d.kind for d in made)
        assert kinds["alert"] >= 1, (rule.id, kinds)
        if rule.window == "sliding":
            assert kinds["resolve"] == kinds["alert"], (rule.id, kinds)
        if any(level.kind == "block" for level in rule.thresholds):
            assert kinds["block"] >= 1 and kinds["unblock"] == kinds["block"], (rule.id, kinds)
            blocks = [d for d in made if d.kind == "block"]
            unblocks = [d for d in made if d.kind == "unblock"]
            for block, unblock in zip(blocks, unblocks, strict=True):
                assert block.caller_id == unblock.caller_id and block.at < unblock.at
                assert block.until is None or unblock.at < block.until, (rule.id, block.until, unblock.at)
