"""The profile's `fields` key: purpose, ingress_country and campaign read from where each system keeps them
(a column, a channel variable, an acc extra, a Call resource key, a contact attribute), in files and in
raw stream messages alike; a value the canonical record refuses is that record's reject, not the file's."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.adapters import Profile, ProfileError, convert_raw, read_source
from streams.adapters.profile import profile_from_dict
from tests.adapters.adapter_helpers import FIXTURES, assert_canonical

FIELDS = {"purpose": "cidwatch_purpose", "ingress_country": "cidwatch_ingress", "campaign": "cidwatch_campaign"}
VALUES = {"cidwatch_purpose": "telemarketing", "cidwatch_ingress": "NL", "cidwatch_campaign": " spring-sale "}
EXPECTED = {"purpose": "telemarketing", "ingress_country": "NL", "campaign": "spring-sale"}


def with_fields(profile_file: Path | None, fields: dict[str, str]) -> Profile:
    data = yaml.safe_load(profile_file.read_text(encoding="utf-8")) if profile_file else {}
    return profile_from_dict({**(data or {}), "fields": fields})


def csv_with_columns(path: Path, values: dict[str, str], *, header: bool) -> str:
    """The file's rows with the named columns appended (and to the header when it has one)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for index, row in enumerate(rows):
        writer.writerow([*row, *(list(values) if header and index == 0 else list(values.values()))])
    return out.getvalue()


def records(items: list[Any]) -> list[dict[str, Any]]:
    for item in items:
        if item.record is not None:
            assert_canonical(item)
    return [item.record for item in items if item.record is not None]


def test_asterisk_reads_a_cdr_column(tmp_path: Path) -> None:
    """cdr_csv has fixed columns: the dialplan's Set(CDR(userfield)=telemarketing) is the usual place."""
    source = FIXTURES / "asterisk" / "golden.csv"
    text = source.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([*row[:-1], "telemarketing"])  # userfield is the last column
    profile = with_fields(FIXTURES / "asterisk" / "golden.profile.yaml", {"purpose": "userfield"})
    profile = replace(profile, asterisk=replace(profile.asterisk, caller_column="src"))
    path = tmp_path / "Master.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    converted = records(list(read_source(path, "asterisk", profile)))
    assert converted and all(record["purpose"] == "telemarketing" for record in converted)
    streamed = records(convert_raw("asterisk", out.getvalue().encode(), profile))
    assert streamed == converted


def test_freeswitch_csv_reads_a_template_column() -> None:
    profile_file = FIXTURES / "freeswitch-csv" / "custom_template.profile.yaml"
    base = yaml.safe_load(profile_file.read_text(encoding="utf-8"))
    base["freeswitch"]["columns"] = [*base["freeswitch"]["columns"], *VALUES]
    profile = profile_from_dict({**base, "fields": FIELDS})
    text = csv_with_columns(FIXTURES / "freeswitch-csv" / "custom_template.csv", VALUES, header=False)
    converted = records(convert_raw("freeswitch-csv", text.encode(), profile))
    assert converted
    for record in converted:
        assert {key: record[key] for key in EXPECTED} == EXPECTED


def test_freeswitch_json_reads_a_channel_variable_decoded() -> None:
    """mod_json_cdr URL-encodes every variable (encode-values): the field is read after decoding."""
    document = json.loads((FIXTURES / "freeswitch-json" / "a_leg_outbound.json").read_text(encoding="utf-8"))
    document["variables"].update({"cidwatch_purpose": "telemarketing", "cidwatch_ingress": "NL",
                                  "cidwatch_campaign": "spring%2Dsale"})
    profile = with_fields(FIXTURES / "freeswitch-json" / "golden.profile.yaml", FIELDS)
    (record,) = records(convert_raw("freeswitch-json", json.dumps(document).encode(), profile))
    assert {key: record[key] for key in EXPECTED} == EXPECTED


def test_kamailio_reads_an_acc_extra_column() -> None:
    text = csv_with_columns(FIXTURES / "kamailio-acc" / "export.csv", VALUES, header=True)
    profile = with_fields(FIXTURES / "kamailio-acc" / "export.profile.yaml", FIELDS)
    converted = records(convert_raw("kamailio-acc", text.encode(), profile))
    assert converted
    for record in converted:
        assert {key: record[key] for key in EXPECTED} == EXPECTED


def test_twilio_reads_a_key_of_the_call_resource() -> None:
    call = json.loads((FIXTURES / "twilio" / "golden_call.json").read_text(encoding="utf-8"))
    call.update(VALUES)
    (record,) = records(convert_raw("twilio", json.dumps(call).encode(), with_fields(None, FIELDS)))
    assert {key: record[key] for key in EXPECTED} == EXPECTED


def test_connect_reads_a_contact_attribute_over_the_campaign_id() -> None:
    line = (FIXTURES / "connect-ctr" / "golden.jsonl").read_text(encoding="utf-8").splitlines()[0]
    contact = json.loads(line)
    contact["Attributes"] = dict(VALUES)
    contact["Campaign"] = {"CampaignId": "from-the-dialer"}
    items = convert_raw("connect-ctr", json.dumps(contact).encode(), with_fields(None, FIELDS))
    (record,) = records(items)
    assert {key: record[key] for key in EXPECTED} == EXPECTED
    (plain,) = records(convert_raw("connect-ctr", json.dumps(contact).encode(), Profile()))
    assert (plain["campaign"], plain.get("purpose")) == ("from-the-dialer", None)


def test_empty_values_leave_the_field_unset() -> None:
    call = json.loads((FIXTURES / "twilio" / "golden_call.json").read_text(encoding="utf-8"))
    call.update({"cidwatch_purpose": "  ", "cidwatch_ingress": None})
    (record,) = records(convert_raw("twilio", json.dumps(call).encode(), with_fields(None, FIELDS)))
    assert record.get("purpose") is None and record.get("ingress_country") is None


@pytest.mark.parametrize(("values", "reason"), [
    ({"cidwatch_purpose": "robocall"}, "purpose"),
    ({"cidwatch_ingress": "Netherlands"}, "ingress_country"),
])
def test_a_refused_value_rejects_that_record_only(values: dict[str, str], reason: str) -> None:
    good = json.loads((FIXTURES / "twilio" / "golden_call.json").read_text(encoding="utf-8"))
    bad = {**good, **values, "sid": good["sid"][:-2] + "99"}
    items = convert_raw("twilio", json.dumps([bad, good]).encode(), with_fields(None, FIELDS))
    assert [item.record is not None for item in items] == [False, True]
    assert items[0].reject is not None and reason in items[0].reject


@pytest.mark.parametrize(("data", "message"), [
    ({"fields": {"destination": "x"}}, "fields.destination: not a field a source can supply"),
    ({"fields": {"purpose": ""}}, "fields.purpose: expected a name"),
    ({"fields": ["purpose"]}, "fields: expected a mapping"),
])
def test_bad_fields_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(data)
