"""Hostile records: validation is total and the engine judges whatever it accepts.

Hypothesis generates (and shrinks) what an attacker or a broken exporter sends: arbitrary bytes,
damaged good records, deep nesting, huge integers, lone surrogates, odd floats and times at the edges
of datetime. `validate` must return a Cdr or raise Rejected, nothing else; every Cdr it returns must
go through the engine (with and without a default region, alone and after other records), and
through every encoder the stream and replay use, without raising.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hostile_fixtures import HOSTILE, OVERSIZED, Hostile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.cdr import DIRECTIONS, LATEST, MAX_DEPTH, MAX_DURATION_S, MAX_TEXT, Cdr, CdrError, parse_cdr, parse_json
from rules.engine import Engine
from rules.inventory import load_inventory
from rules.pack import load_packs
from rules.state import DictState, SubjectState
from streams.dlq import Rejected, internal_error, validate

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1_000_000
PACK = load_packs()
INVENTORY = load_inventory(ROOT / "examples" / "inventory.yaml")
ENGINES = (Engine(PACK, INVENTORY), Engine(PACK, INVENTORY, "FR"), Engine(PACK, None, "US"))
GOOD = {"call_id": "g-1", "started_at": "2026-05-04T10:00:00Z", "caller_id": "+33184884001",
        "destination": "+33612345678", "tenant": "acme"}


def hostile(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Raw:
    """JSON text written as is (what json.dumps cannot write: ints past 4300 digits, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''} {len(self.text)} chars)"


def dump(value: Any) -> str:
    """JSON text of a generated value; surrogates are escaped (\\udfff), as a hostile exporter writes them."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def nested(depth: int, leaf: str = "1", kind: str = "[") -> Raw:
    opening, closing = ("[", "]") if kind == "[" else ('{"a":', "}")
    return Raw(opening * depth + leaf + closing * depth)


# --- strategies ----------------------------------------------------------------------------------

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
any_char = st.one_of(st.characters(exclude_categories=()), surrogates)
texts = st.one_of(
    st.text(any_char, max_size=12),
    st.text(st.characters(exclude_categories=()), min_size=MAX_TEXT - 2, max_size=MAX_TEXT + 2),
    st.sampled_from(["", " ", "\x00", "\udfff", "a\ud800b", "\ud83d\ude00", "+33 1 84 88 40 01", "²³", "٣٣"]),
)
big_ints = st.one_of(
    st.integers(),
    st.sampled_from([10**308, 10**309, -(10**400), 10 ** (MAX_TEXT - 1), 10 ** (MAX_TEXT - 1) - 1, 2**63]),
    st.integers(300, 6000).map(lambda n: Raw("9" * n)),  # past 4300 digits json.loads refuses to convert
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("NaN"), Raw("Infinity"), Raw("-0.0"),
                                    MAX_DURATION_S, MAX_DURATION_S + 0.5, 5e-324]))
deep = st.builds(nested, st.one_of(st.integers(1, 40), st.integers(900, 3000)),
                st.sampled_from(["1", '"x"', "{}", "[]"]), st.sampled_from("[{"))
scalars = st.one_of(st.none(), st.booleans(), big_ints, floats, texts)
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(texts, inner, max_size=3)), max_leaves=8)
json_values = st.one_of(trees, trees, trees, deep)

EDGE_TIMES = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999+00:00", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "2000-01-01T00:00:00+14:00",
    "2099-12-31T23:59:59.999999Z", "2099-12-31T23:59:59-14:00", "2100-01-01T00:00:00Z", "2026-03-29T01:59:59+01:00",
    "2026-10-25T02:30:00", "2026-05-04T10:00:00z", "2026-05-04 10:00+23:59", "2026-W18-1T10:00+00:00", "24:00",
    "2026-05-04T10:00:00\udfff",
]
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
times = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.builds(lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
              st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)), offsets),
    st.builds(lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
              st.datetimes(datetime(1999, 12, 30), datetime(2100, 1, 2)), offsets),
    json_values,
)
NUMBERS = ["+33184884000", "+33184884001", "+33162000010", "+18005550100", "+18885550199", "+448701234567",
           "+442071838750", "+611300123456", "+61291234567", "+13125550188", "+14155550100", "+18445550111",
           "+33612345678", "0612345678", "0207 183 8750", "anonymous", "+", "+0", "+1" + "0" * 30]
numbers = st.one_of(st.sampled_from(NUMBERS), texts, big_ints)
FIELDS = {
    "call_id": st.one_of(st.sampled_from(["c1", "c2", "c3"]), texts, big_ints, json_values),
    "started_at": times,
    "direction": st.one_of(st.sampled_from([*DIRECTIONS, "OUTBOUND", "sideways"]), json_values),
    "caller_id": numbers,
    "destination": numbers,
    "answered": st.one_of(st.booleans(), st.sampled_from([0, 1, 2, "true", "0", "maybe"]), json_values),
    "duration_s": st.one_of(floats, big_ints, st.sampled_from(["12", "1e5", "inf", "nan", "-1"]), json_values),
    "sip_code": st.one_of(st.integers(0, 1000), st.sampled_from([200.0, 200.5, "603", Raw("1e400")]), json_values),
    "attestation": st.one_of(st.sampled_from(["A", "b", "C", "D"]), json_values),
    "tenant": st.one_of(st.sampled_from(["acme", None]), texts, json_values),
    "campaign": st.one_of(texts, json_values),
    "carrier": st.one_of(texts, json_values),
}
# Mostly plausible values (so most records pass and reach the engine), any of them replaced by hostile ones.
plausible = {
    "call_id": st.sampled_from(["c1", "c2", "c3", "c4"]),
    "started_at": st.builds(lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
                            st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30)), offsets),
    "direction": st.sampled_from(DIRECTIONS),
    "caller_id": st.sampled_from(NUMBERS),
    "destination": st.sampled_from(NUMBERS),
    "answered": st.booleans(),
    "duration_s": st.floats(0, MAX_DURATION_S),
    "sip_code": st.sampled_from([200, 486, 603, 607, 608]),
    "attestation": st.sampled_from(["A", "B", "C"]),
    "tenant": st.sampled_from(["acme", "other"]),
    "campaign": st.sampled_from(["spring", "é" * MAX_TEXT]),
    "carrier": st.text(max_size=8),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, hostile in FIELDS.items():
        choice = draw(st.integers(0, 9))
        if choice == 0:
            continue  # absent
        if choice == 1:
            record[name] = draw(hostile)
        else:
            record[name] = draw(plausible[name])
    if draw(st.integers(0, 3)) == 0:
        record[draw(texts)] = draw(json_values)  # a field the contract does not know
    return record


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A good record's bytes with a few bytes overwritten, inserted or cut."""
    data = bytearray(json.dumps(GOOD).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "cut"]))
        byte = draw(st.integers(0, 255))
        if action == "set" and at < len(data):
            data[at] = byte
        elif action == "insert":
            data[at:at] = bytes([byte])
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


def checked(value: bytes) -> Cdr | None:
    """validate(value): a Cdr, or None when Rejected with a bounded reason. Anything else fails."""
    try:
        cdr = validate(value, MAX_BYTES)
    except Rejected as rejected:
        assert rejected.error_class and rejected.field
        assert len(rejected.reason) < 400, rejected.reason  # a reason never echoes a whole value
        json.dumps([rejected.reason, rejected.field]).encode()
        return None
    assert isinstance(cdr, Cdr)
    return cdr


def judge_all(cdrs: list[Cdr]) -> None:
    """Every engine judges every record in order, and everything the stream encodes encodes."""
    for engine in ENGINES:
        store = DictState()
        for cdr in cdrs:
            assert parse_cdr(json.loads(cdr.to_json())) == cdr  # the repartition topic's round trip
            engine.subject(cdr).encode()  # the by-subject key
            for decision in engine.judge(cdr, store).decisions:
                decision.to_json()
        risk = engine.pack.get("spam.label_risk")
        for subject, state in store.items():  # the changelog table, as the worker writes and reads it
            subject.encode()
            SubjectState.from_dict(json.loads(json.dumps(state.to_dict())), risk and risk.config)
        for decision in engine.expire(store, LATEST + timedelta(days=3)):  # the wall clock lifts what is due
            decision.to_json()


# --- properties ----------------------------------------------------------------------------------


@hostile(400)
@given(st.one_of(st.binary(max_size=200), damaged()))
def test_validate_is_total_on_any_bytes(value: bytes) -> None:
    cdr = checked(value)
    if cdr is not None:
        judge_all([cdr])


@hostile(300)
@given(json_values)
def test_validate_is_total_on_any_json(value: Any) -> None:
    checked(dump(value).encode())


@hostile(600)
@given(st.lists(records(), min_size=1, max_size=4))
def test_engine_judges_every_record_validation_accepts(batch: list[dict[str, Any]]) -> None:
    accepted = [cdr for cdr in (checked(dump(record).encode()) for record in batch) if cdr is not None]
    judge_all(accepted)


@hostile(300)
@given(st.lists(st.builds(dict, st.fixed_dictionaries(plausible)), min_size=1, max_size=6))
def test_engine_judges_plausible_records_in_any_order(batch: list[dict[str, Any]]) -> None:
    cdrs = [checked(json.dumps(record).encode()) for record in batch]
    assert all(cdrs), batch
    judge_all(cdrs)  # type: ignore[arg-type]


@hostile(200)
@given(st.text(st.sampled_from('[]{}"\\ ,:1a'), max_size=120))
def test_nesting_check_agrees_with_the_parser(text: str) -> None:
    """The depth scan never calls valid JSON too deep when it is not, nor misses a deep one."""
    try:
        value = json.loads(text)
    except ValueError:
        return
    depth = _depth(value)
    try:
        parse_json(text)
    except CdrError as exc:
        assert exc.kind == "too_deep" and depth > MAX_DEPTH
    else:
        assert depth <= MAX_DEPTH


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


# --- each kind of the issue, by name ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [*HOSTILE, OVERSIZED], ids=lambda bad: bad.kind)
def test_the_issues_hostile_lines_are_rejected_with_their_reason(bad: Hostile) -> None:
    """The lines the replay, produce and stream tests use (tests/hostile_fixtures.py)."""
    with pytest.raises(Rejected) as caught:
        validate(bad.line, 10_000_000)
    assert (caught.value.error_class, caught.value.field) == (bad.error_class, bad.field)
    assert bad.reason in caught.value.reason


def record_bytes(**fields: Any) -> bytes:
    return dump({**GOOD, **fields}).encode()


@pytest.mark.parametrize(("value", "error_class", "field", "reason"), [
    pytest.param(b'{"call_id":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep", "record",
                 "nested too deeply", id="deep-nesting"),
    pytest.param(dump(nested(MAX_DEPTH + 1, kind="{")).encode(), "too_deep", "record", "nested too deeply",
                 id="nesting-just-past-the-bound"),
    pytest.param(record_bytes(duration_s=10**400), "bad_value", "duration_s", "number out of range",
                 id="huge-int"),
    pytest.param(record_bytes(duration_s=Raw("9" * 5000)), "bad_value", "record", "too many digits",
                 id="int-past-4300-digits"),
    pytest.param(record_bytes(call_id=10**300), "bad_value", "call_id", "longer than 256", id="huge-int-id"),
    pytest.param(record_bytes(caller_id="\udfff"), "bad_value", "caller_id", "lone surrogate U+DFFF",
                 id="lone-surrogate"),
    pytest.param(record_bytes(tenant="ok\ud800"), "bad_value", "tenant", "lone surrogate U+D800",
                 id="lone-surrogate-tenant"),
    pytest.param(record_bytes(started_at="0001-01-01T00:00:00+14:00"), "bad_value", "started_at", "out of range",
                 id="year-1-positive-offset"),
    pytest.param(record_bytes(started_at="9999-12-31T23:59:59-14:00"), "bad_value", "started_at", "out of range",
                 id="year-9999-negative-offset"),
    pytest.param(record_bytes(started_at="9999-12-31T23:59:59Z"), "bad_value", "started_at", "out of range",
                 id="year-9999-utc"),
    pytest.param(record_bytes(started_at="1999-12-31T23:59:59Z"), "bad_value", "started_at", "out of range",
                 id="before-2000"),
    pytest.param(record_bytes(started_at="2100-01-01T00:00:00Z"), "bad_value", "started_at", "out of range",
                 id="from-2100"),
    pytest.param(record_bytes(duration_s=MAX_DURATION_S + 1), "bad_value", "duration_s", "at most 604800",
                 id="duration-over-7-days"),
    pytest.param(record_bytes(duration_s=Raw("1e400")), "bad_value", "duration_s", "finite", id="duration-inf"),
    pytest.param(record_bytes(call_id="x" * (MAX_TEXT + 1)), "bad_value", "call_id", "longer than 256",
                 id="long-text"),
    pytest.param(record_bytes(caller_id=["+33184884001"]), "bad_type", "caller_id", "records are flat",
                 id="container-in-a-field"),
    pytest.param(record_bytes(sip_code="6" * 10_000), "bad_type", "sip_code", "characters)", id="long-number-text"),
    pytest.param(record_bytes(direction="\U000101fe" * MAX_TEXT), "bad_type", "direction", "must be one of",
                 id="astral-text-quoted-in-a-reason"),
])
def test_each_hostile_kind_is_rejected_with_its_reason(value: bytes, error_class: str, field: str,
                                                       reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        validate(value, 10_000_000)
    assert (caught.value.error_class, caught.value.field) == (error_class, field)
    assert reason in caught.value.reason and len(caught.value.reason) < 400


@pytest.mark.parametrize("fields", [
    pytest.param({"started_at": "2000-01-01T00:00:00Z"}, id="first-instant"),
    pytest.param({"started_at": "2000-01-01T14:00:00+14:00"}, id="first-instant-by-offset"),
    pytest.param({"started_at": "2099-12-31T23:59:59.999999Z"}, id="last-instant"),
    pytest.param({"started_at": "2099-12-31T09:59:59-14:00"}, id="last-day-with-offset"),
    pytest.param({"duration_s": MAX_DURATION_S, "answered": True}, id="longest-call"),
    pytest.param({"call_id": "x" * MAX_TEXT, "campaign": "é" * MAX_TEXT}, id="longest-text"),
    pytest.param({"caller_id": "\ud83d\ude00", "extra": nested(MAX_DEPTH - 1)}, id="emoji-and-deep-extra"),
    pytest.param({"call_id": 10 ** (MAX_TEXT - 1) - 1}, id="longest-int-id"),
])
def test_values_at_the_bounds_are_accepted_and_judged(fields: dict[str, Any]) -> None:
    cdr = validate(record_bytes(**fields), MAX_BYTES)
    assert LATEST - timedelta(days=36525) <= cdr.started_at < LATEST
    judge_all([cdr, validate(record_bytes(**{**fields, "call_id": "other"}), MAX_BYTES)])


def test_rules_at_the_last_day_end_their_windows_and_blocks() -> None:
    """A French CLI past its daily cap on the last accepted day: the block's `until` (next Paris midnight,
    in 2100) is computed and the wall clock lifts it, with no overflow."""
    start = datetime(2099, 12, 31, 8, 0, tzinfo=UTC)
    batch = [{**GOOD, "call_id": f"late-{i}", "started_at": (start + timedelta(seconds=30 * i)).isoformat()}
             for i in range(260)]
    engine = Engine(PACK, INVENTORY)
    store = DictState()
    decisions = []
    for record in batch:
        decisions += engine.judge(validate(json.dumps(record).encode(), MAX_BYTES), store).decisions
    decisions += engine.expire(store, LATEST + timedelta(days=1))
    kinds = {(d.rule, d.kind) for d in decisions}
    assert {("fr.daily_limit", "block"), ("fr.daily_limit", "unblock")} <= kinds
    assert all(d.to_json() for d in decisions)


def test_internal_error_names_the_exception_class() -> None:
    rejected = internal_error(OverflowError("date value out of range"))
    assert rejected == Rejected("internal_error", "record", "the engine raised OverflowError on this record")
    assert isinstance(rejected, Exception)


def test_a_reject_leaves_a_context_manager_as_itself() -> None:
    """Python sets __traceback__ on an exception leaving a @contextmanager: a frozen Rejected broke that."""
    from contextlib import contextmanager

    @contextmanager
    def around() -> Any:
        yield

    with pytest.raises(Rejected), around():
        validate(b"[]", MAX_BYTES)
