"""Per-format decisions the golden files show once, pinned here on purpose: legs, copies, joins, zones."""

from __future__ import annotations

import json
from pathlib import Path

from adapter_helpers import FIXTURES, assert_canonical

from streams.adapters import SourceItem, convert_raw, read_source
from streams.adapters.profile import profile_from_dict

PARIS = profile_from_dict({"timezone": "Europe/Paris", "default_region": "FR"})
UTC_FR = profile_from_dict({"default_region": "FR"})


def convert(fmt: str, text: str, profile: object = UTC_FR) -> list[SourceItem]:
    return convert_raw(fmt, text.encode(), profile)


def records(items: list[SourceItem]) -> list[dict]:
    return [item.record for item in items if item.record is not None]


# --- asterisk -----------------------------------------------------------------------------------------

ASTERISK_ROW = ('"","0145678901","0612345678","from-internal","""Acme"" <0145678901>","PJSIP/1001-1","PJSIP/t-2",'
                '"Dial","PJSIP/0612345678@t","2024-07-01 10:00:00","2024-07-01 10:00:05","2024-07-01 10:01:05",'
                '65,60,"ANSWERED","DOCUMENTATION","1719828000.1",""\n')


def test_asterisk_time_zone_comes_from_the_profile() -> None:
    assert records(convert("asterisk", ASTERISK_ROW, PARIS))[0]["started_at"] == "2024-07-01T08:00:00Z"
    assert records(convert("asterisk", ASTERISK_ROW, UTC_FR))[0]["started_at"] == "2024-07-01T10:00:00Z"


def test_asterisk_row_without_uniqueid_gets_a_stable_distinct_id() -> None:
    profile = profile_from_dict({"asterisk": {"uniqueid": False, "userfield": False}})
    row = ASTERISK_ROW.rsplit(',"1719828000.1",""', 1)[0] + "\n"
    first = records(convert("asterisk", row, profile))[0]["call_id"]
    again = records(convert("asterisk", row, profile))[0]["call_id"]
    other = records(convert("asterisk", row.replace("10:00:00", "10:00:01"), profile))[0]["call_id"]
    assert first == again != other and first.startswith("asterisk-")


def test_asterisk_latin1_master_csv_converts() -> None:
    row = ASTERISK_ROW.replace("Acme", "Hélène").encode("latin-1")
    (item,) = convert_raw("asterisk", row, PARIS)
    assert item.record is not None and item.record["caller_id"] == "+33145678901"


# --- FreeSWITCH ---------------------------------------------------------------------------------------

A_LEG = ('"Alice","1001","0612345678","default","2024-03-12 10:00:00","2024-03-12 10:00:07","2024-03-12 10:01:07",'
         '"67","60","NORMAL_CLEARING","aaaaaaaa-0000-4000-8000-000000000001","bbbbbbbb-0000-4000-8000-000000000002",'
         '"1001","PCMA","PCMA"\n')
B_LEG = ('"Acme","0145678901","0612345678","default","2024-03-12 10:00:00","2024-03-12 10:00:07","2024-03-12 10:01:07",'
         '"67","60","NORMAL_CLEARING","bbbbbbbb-0000-4000-8000-000000000002","","","PCMA","PCMA"\n')


def test_freeswitch_legs_link_in_either_order() -> None:
    leg_b = profile_from_dict({"default_region": "FR", "freeswitch": {"leg": "b"}})
    for text in (A_LEG + B_LEG, B_LEG + A_LEG):
        kept = records(convert("freeswitch-csv", text, leg_b))
        assert [record["call_id"] for record in kept] == ["bbbbbbbb-0000-4000-8000-000000000002"]
        assert kept[0]["caller_id"] == "+33145678901"


def test_freeswitch_direction_map_is_applied() -> None:
    row = A_LEG.replace('"1001","0612345678"', '"0145678901","0612345678"').replace(
        "bbbbbbbb-0000-4000-8000-000000000002", "")
    as_outbound = records(convert("freeswitch-csv", row))[0]
    as_inbound = records(convert("freeswitch-csv", row, profile_from_dict(
        {"default_region": "FR", "freeswitch": {"direction_map": {"inbound": "inbound"}}})))[0]
    assert (as_outbound["direction"], as_inbound["direction"]) == ("outbound", "inbound")


def test_freeswitch_json_keeps_the_b_leg_when_asked() -> None:
    leg_b = profile_from_dict({"default_region": "FR", "freeswitch": {"leg": "b"}})
    a_leg = list(read_source(FIXTURES / "freeswitch-json/a_leg_outbound.json", "freeswitch-json", leg_b))
    b_leg = list(read_source(FIXTURES / "freeswitch-json/b_leg_outbound.json", "freeswitch-json", leg_b))
    assert a_leg[0].skip == "A-leg: the profile keeps B-legs (freeswitch.leg: b)"
    assert b_leg[0].record is not None
    assert (b_leg[0].record["caller_id"], b_leg[0].record["direction"]) == ("+33145678901", "outbound")


def test_freeswitch_json_duplicate_callflows_are_all_read() -> None:
    """The most recent callflow (the first) gives the destination; the older one is not lost."""
    (item,) = read_source(FIXTURES / "freeswitch-json/unanswered_duplicate_callflow.json", "freeswitch-json", UTC_FR)
    assert item.record is not None and item.record["destination"] == "+33698765432"


# --- Amazon Connect -----------------------------------------------------------------------------------

def ctr_copies() -> list[dict]:
    lines = (FIXTURES / "connect-ctr/golden.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[-3:]]


def test_connect_keeps_the_latest_copy_whatever_the_order(tmp_path: Path) -> None:
    first, second, third = ctr_copies()
    path = tmp_path / "ctr.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (third, first, second)) + "\n", encoding="utf-8")
    items = list(read_source(path, "connect-ctr", UTC_FR))
    assert [item.record is not None for item in items] == [True, False, False]
    assert all(item.skip.startswith("older copy of a contact") for item in items[1:])


def test_connect_equal_timestamps_keep_the_later_copy(tmp_path: Path) -> None:
    first, _, _ = ctr_copies()
    path = tmp_path / "ctr.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(first) + "\n", encoding="utf-8")
    assert [item.record is not None for item in read_source(path, "connect-ctr", UTC_FR)] == [False, True]


def test_connect_copy_without_last_update_loses(tmp_path: Path) -> None:
    first, second, _ = ctr_copies()
    second = {**second, "LastUpdateTimestamp": None}
    path = tmp_path / "ctr.jsonl"
    path.write_text(json.dumps(second) + "\n" + json.dumps(first) + "\n", encoding="utf-8")
    assert [item.record is not None for item in read_source(path, "connect-ctr", UTC_FR)] == [False, True]


def test_connect_stream_converts_every_copy_under_one_call_id() -> None:
    """The stream judges the first copy and ignores the rest by call_id: all copies must share it."""
    messages = [convert_raw("connect-ctr", json.dumps(copy).encode(), UTC_FR) for copy in ctr_copies()]
    call_ids = {items[0].record["call_id"] for items in messages if items[0].record}
    assert len(call_ids) == 1 and call_ids == {ctr_copies()[0]["ContactId"]}


def test_connect_transfer_to_a_non_phone_endpoint_is_skipped() -> None:
    first = ctr_copies()[0]
    transfer = {**first, "InitiationMethod": "TRANSFER", "CustomerEndpoint": {"Address": "agent1", "Type": "AGENT"}}
    (item,) = convert("connect-ctr", json.dumps(transfer))
    assert item.skip == "InitiationMethod TRANSFER without an external number in CustomerEndpoint"


# --- Twilio -------------------------------------------------------------------------------------------

def test_twilio_calls_one_per_line() -> None:
    page = json.loads((FIXTURES / "twilio/golden_page.json").read_text(encoding="utf-8"))
    text = "\n".join(json.dumps(call) for call in page["calls"][:3])
    items = convert("twilio", text)
    assert [item.location for item in items] == ["line 1", "line 2", "line 3"]
    assert all(item.record for item in items)


def test_twilio_time_without_offset_is_rejected() -> None:
    page = json.loads((FIXTURES / "twilio/golden_page.json").read_text(encoding="utf-8"))
    call = {**page["calls"][0], "start_time": "Tue, 12 Mar 2024 09:00:05 -0000"}
    (item,) = convert("twilio", json.dumps(call))
    assert item.reject == "start_time: time 'Tue, 12 Mar 2024 09:00:05 -0000' has no UTC offset"


def test_twilio_unmapped_outbound_value_is_outbound() -> None:
    page = json.loads((FIXTURES / "twilio/golden_page.json").read_text(encoding="utf-8"))
    call = {**page["calls"][0], "direction": "outbound-future"}
    assert records(convert("twilio", json.dumps(call)))[0]["direction"] == "outbound"


# --- Kamailio / OpenSIPS ------------------------------------------------------------------------------

INVITE = ("INVITE|a1|b1|call-1@192.0.2.10|200|OK|1710237606|+33145678901|pbx|192.0.2.10|+33612345678|"
          "+33612345678|carrier\n")
BYE = "BYE|a1|b1|call-1@192.0.2.10|200|OK|1710237726||||||\n"


def test_kamailio_stream_messages_join_only_within_themselves() -> None:
    together = convert("kamailio-acc", INVITE + BYE)
    assert records(together)[0]["duration_s"] == 120.0
    invite_alone, bye_alone = convert("kamailio-acc", INVITE), convert("kamailio-acc", BYE)
    assert records(invite_alone)[0]["duration_s"] == 0.0 and records(invite_alone)[0]["answered"] is True
    assert bye_alone[0].skip is not None and bye_alone[0].skip.startswith("BYE without an answered INVITE")


def test_kamailio_comma_rows_without_header_use_the_profile_columns() -> None:
    text = INVITE.replace("|", ",") + BYE.replace("|", ",")
    assert records(convert("kamailio-acc", text))[0]["caller_id"] == "+33145678901"


def test_kamailio_profile_columns_win_over_a_header() -> None:
    profile = profile_from_dict({"kamailio": {
        "columns": ["method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time", "a", "b", "c", "d",
                    "e", "f"], "caller_column": "a", "callee_column": "e"}})
    header = "method|from_tag|to_tag|callid|sip_code|sip_reason|time|w|x|y|z|v|u\n"
    items = convert("kamailio-acc", header + INVITE, profile)
    assert [item.location for item in items] == ["line 2"]
    assert items[0].record is not None and items[0].record["destination"] == "+33612345678"


def test_kamailio_datetime_export_duration_across_the_dst_change() -> None:
    """INVITE at 01:59:00 CET, BYE at 03:01:00 CEST on 31 March 2024: 2 minutes, not 62."""
    rows = ("method,from_tag,to_tag,callid,sip_code,sip_reason,time,src_user,dst_user\n"
            "INVITE,a,b,c1,200,OK,2024-03-31 01:59:00,0145678901,0612345678\n"
            "BYE,a,b,c1,200,OK,2024-03-31 03:01:00,,\n")
    (record,) = records(convert("kamailio-acc", rows, PARIS))
    assert (record["started_at"], record["duration_s"]) == ("2024-03-31T00:59:00Z", 120.0)


def test_every_record_of_every_rule_fixture_is_canonical() -> None:
    profiles = {"asterisk": PARIS, "freeswitch-csv": PARIS}
    for fmt, name in [("asterisk", "rules.csv"), ("freeswitch-csv", "rules.csv"), ("freeswitch-json", "rules.jsonl"),
                      ("connect-ctr", "rules.jsonl"), ("twilio", "rules.json"), ("kamailio-acc", "rules.txt")]:
        items = list(read_source(FIXTURES / fmt / name, fmt, profiles.get(fmt, UTC_FR)))
        assert not [item for item in items if item.reject], fmt
        converted = [item for item in items if item.record]
        assert len(converted) == 262, fmt  # 260 French calls, one toll-free, one UK 0870
        for item in converted:
            assert_canonical(item)
