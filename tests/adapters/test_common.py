"""Shared adapter decisions: number normalisation, extensions, direction, times, JSON framing, API errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.adapters import FORMATS, convert_raw, read_source
from streams.adapters.common import (
    Number,
    Reject,
    Skip,
    call_direction,
    clid_number,
    decode,
    json_values,
    local_time,
    number,
    require_presented_caller,
)
from streams.adapters.profile import profile_from_dict

FR = profile_from_dict({"default_region": "FR", "timezone": "Europe/Paris"})
NO_REGION = profile_from_dict({})


@pytest.mark.parametrize(("raw", "profile", "expected"), [
    ("0145678901", FR, Number("+33145678901", "e164")),
    ("01 45 67 89 01", FR, Number("+33145678901", "e164")),
    ("0033145678901", FR, Number("+33145678901", "e164")),
    ("+44 20 7946 0000", NO_REGION, Number("+442079460000", "e164")),
    ("0145678901", NO_REGION, Number("0145678901", "other")),  # kept raw: the rules flag it, never the adapter
    ("1001", FR, Number("1001", "extension")),
    ("*1003", FR, Number("*1003", "extension")),
    ("1234567", FR, Number("1234567", "other")),  # 7 digits: longer than an extension
    ("sip:+33612345678@sip.example.com", NO_REGION, Number("+33612345678", "e164")),
    ("sip:kevin@example.com", NO_REGION, Number("sip:kevin@example.com", "other")),
    ("tel:0612345678", FR, Number("+33612345678", "e164")),
    ("anonymous", FR, Number("anonymous", "other")),
    ("", FR, Number("", "empty")),
    (None, FR, Number("", "empty")),
])
def test_number_normalisation(raw: str | None, profile: object, expected: Number) -> None:
    assert number(raw, profile) == expected


def test_extension_length_is_configurable() -> None:
    four = profile_from_dict({"extension_max_digits": 4})
    assert number("10001", four).kind == "other"
    assert number("1001", four).kind == "extension"
    assert number("10001", NO_REGION).kind == "extension"


@pytest.mark.parametrize(("clid", "expected"), [
    ('"Acme Accueil" <0145678901>', "0145678901"),
    ("<1001>", "1001"),
    ('"No number"', ""),
    ("", ""),
])
def test_clid_number(clid: str, expected: str) -> None:
    assert clid_number(clid) == expected


E164, EXT, EMPTY, OTHER = Number("+33145678901", "e164"), Number("1001", "extension"), Number("", "empty"), Number(
    "anonymous", "other")


@pytest.mark.parametrize(("default", "caller", "destination", "context", "expected"), [
    ("outbound", E164, E164, False, "outbound"),
    ("outbound", EXT, EXT, False, "internal"),
    ("outbound", EMPTY, EXT, False, "internal"),
    ("outbound", E164, EXT, False, "inbound"),
    ("outbound", OTHER, EXT, False, "inbound"),
    ("outbound", E164, E164, True, "inbound"),
    ("inbound", E164, E164, False, "inbound"),
])
def test_call_direction(default: str, caller: Number, destination: Number, context: bool, expected: str) -> None:
    assert call_direction(default, caller, destination, inbound_context=context) == expected


def test_an_outbound_call_from_an_extension_is_skipped_with_the_fix() -> None:
    with pytest.raises(Skip, match=r"outbound call from an extension.*\(do this\)"):
        require_presented_caller("outbound", EXT, E164, "do this")
    require_presented_caller("internal", EXT, EXT, "do this")
    require_presented_caller("outbound", E164, E164, "do this")


def test_local_time_is_zone_aware_across_the_dst_change() -> None:
    before = local_time("2024-03-31 01:59:59", FR, "start")
    after = local_time("2024-03-31 03:00:00", FR, "start")
    assert before.tzinfo is not None and after.tzinfo is not None
    assert (after - before).total_seconds() == 1
    assert local_time("2024-03-12 10:00:00+00:00", FR, "start") == datetime(2024, 3, 12, 10, tzinfo=UTC)
    with pytest.raises(Reject, match="start: expected a time"):
        local_time("12/03/2024", FR, "start")


def test_decode_falls_back_to_latin1_without_losing_bytes() -> None:
    assert decode("Hélène".encode()) == "Hélène"
    assert decode("Hélène".encode("latin-1")) == "Hélène"
    assert decode(b"\xef\xbb\xbfabc") == "abc"


@pytest.mark.parametrize(("text", "locations"), [
    ('{"a": 1}', ["record 1"]),
    ('[{"a": 1}, {"a": 2}]', ["record 1", "record 2"]),
    ('{"a": 1}\n\n{"a": 2}\n', ["line 1", "line 3"]),
    ('{"a": 1}{"a": 2}\n{"a": 3}', ["line 1", "line 1, record 2", "line 2"]),
    ('{\n  "a": 1,\n  "b": \n}', ["record 1"]),
])
def test_json_framings(text: str, locations: list[str]) -> None:
    assert [location for location, _ in json_values(text)] == locations


def test_a_broken_line_rejects_only_itself() -> None:
    values = list(json_values('{"a": 1}\n{"a": \n{"a": 3}\n'))
    assert [location for location, _ in values] == ["line 1", "line 2", "line 3"]
    assert isinstance(values[1][1], Reject) and values[2][1] == {"a": 3}


def test_a_broken_multiline_document_is_one_reject() -> None:
    values = list(json_values('{\n\t"variables": {\n\t\t"uuid": "x",\n\t}\n}\n'))
    assert len(values) == 1 and isinstance(values[0][1], Reject)
    assert values[0][1].reason.startswith("not valid JSON")


def test_unknown_format_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown input format 'canonical'"):
        read_source(path, "canonical", NO_REGION)
    with pytest.raises(ValueError, match="known: asterisk"):
        convert_raw("cisco", b"", NO_REGION)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_input_gives_no_items(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert list(read_source(path, fmt, NO_REGION)) == []
    assert convert_raw(fmt, b"\n", NO_REGION) == []


HOSTILE_DOCUMENTS = {
    "deep nesting": b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "int past 4300 digits": b'{"a": ' + b"9" * 5000 + b"}",
    "int past 4300 digits on a later line": b'{"a": 1}\n{"b": ' + b"9" * 5000 + b"}",
    "field over the csv limit": b"x," + b"9" * 200_000,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("document", HOSTILE_DOCUMENTS.values(), ids=HOSTILE_DOCUMENTS.keys())
def test_hostile_documents_are_rejects_never_exceptions(fmt: str, document: bytes) -> None:
    """The raw ingest agents and replay --format only expect Reject/Skip items: a RecursionError, the
    int-digit ValueError or a csv.Error would crash the agent (and lose the message)."""
    items = convert_raw(fmt, document, NO_REGION)
    assert items and all(item.record is None for item in items)
