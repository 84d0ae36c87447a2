"""Profiles: explicit defaults, every example loads, and a typo is an error that names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapter_helpers import REPO

from streams.adapters import Profile, ProfileError, load_profile
from streams.adapters.profile import FREESWITCH_EXAMPLE_COLUMNS, profile_from_dict

EXAMPLES = sorted((REPO / "examples" / "profiles").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_profile_gives_the_documented_defaults() -> None:
    profile = load_profile(None)
    assert profile == Profile()
    assert (profile.timezone, profile.default_region, profile.extension_max_digits, profile.tenant) == (
        "UTC", None, 6, None)
    assert (profile.asterisk.uniqueid, profile.asterisk.userfield, profile.asterisk.caller_column) == (
        True, True, "src")
    assert profile.freeswitch.leg == "a"
    assert dict(profile.freeswitch.direction_map) == {"inbound": "outbound", "outbound": "outbound"}
    assert profile.freeswitch.columns == FREESWITCH_EXAMPLE_COLUMNS
    assert profile.kamailio.mode == "transaction"
    assert (profile.kamailio.caller_column, profile.kamailio.callee_column) == ("src_user", "dst_user")


def test_empty_file_is_the_default_profile(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, "")) == Profile()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_profiles_load(path: Path) -> None:
    assert isinstance(load_profile(path), Profile)


def test_examples_cover_every_section() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"asterisk", "freeswitch", "connect-ctr", "twilio", "kamailio", "opensips-cdr"} <= names


@pytest.mark.parametrize(("text", "key"), [
    ("timezon: Europe/Paris\n", "'timezon'"),
    ("asterisk:\n  uniquid: false\n", "'asterisk.uniquid'"),
    ("freeswitch:\n  legs: b\n", "'freeswitch.legs'"),
    ("kamailio:\n  caller: src_user\n", "'kamailio.caller'"),
    ("connect:\n  dedup: true\n", "'connect'"),
])
def test_unknown_keys_are_errors_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError, match=r"unknown profile key") as info:
        load_profile(path)
    assert key in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(("data", "message"), [
    ({"timezone": "Europe/Pariss"}, "timezone: unknown time zone"),
    ({"timezone": 1}, "timezone: expected an IANA zone"),
    ({"default_region": "XX"}, "default_region: expected an ISO region"),
    ({"extension_max_digits": "6"}, "extension_max_digits"),
    ({"extension_max_digits": True}, "extension_max_digits"),
    ({"tenant": ["a"]}, "tenant: expected text"),
    ({"asterisk": {"uniqueid": "yes"}}, "asterisk.uniqueid: expected true or false"),
    ({"asterisk": {"caller_column": "cli"}}, "asterisk.caller_column: must be one of"),
    ({"asterisk": []}, "asterisk: expected a mapping"),
    ({"freeswitch": {"leg": "c"}}, "freeswitch.leg: must be one of a, b"),
    ({"freeswitch": {"direction_map": {"inbound": "out"}}}, "freeswitch.direction_map.inbound: must be one of"),
    ({"freeswitch": {"columns": "uuid"}}, "freeswitch.columns: expected a list"),
    ({"kamailio": {"mode": "dialog"}}, "kamailio.mode: must be one of transaction, cdr"),
    ({"kamailio": {"separator": "||"}}, "kamailio.separator: expected one character"),
    ({"kamailio": {"caller_column": ""}}, "kamailio.caller_column: expected a name"),
    (["timezone"], "a profile is a mapping"),
])
def test_bad_values_are_errors_naming_the_key(data: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(data)


def test_unreadable_yaml_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"not valid YAML: line 2, column 1: expected ',' or '\]'"):
        load_profile(write(tmp_path, "timezone: [unclosed\n"))
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "missing.yaml")


def test_region_is_upper_cased_and_zone_is_usable() -> None:
    profile = profile_from_dict({"default_region": "fr", "timezone": "Europe/Paris"})
    assert profile.default_region == "FR"
    assert str(profile.zone) == "Europe/Paris"


def test_a_partial_direction_map_keeps_the_other_defaults() -> None:
    twilio = profile_from_dict({"twilio": {"direction_map": {"trunking-originating": "outbound"}}}).twilio
    assert twilio.direction_map["trunking-originating"] == "outbound"
    assert twilio.direction_map["outbound-api"] == "outbound"
    assert twilio.direction_map["inbound"] == "inbound"
    freeswitch = profile_from_dict({"freeswitch": {"direction_map": {"outbound": "inbound"}}}).freeswitch
    assert dict(freeswitch.direction_map) == {"inbound": "outbound", "outbound": "inbound"}


def test_kamailio_default_columns_follow_the_mode() -> None:
    transaction = profile_from_dict({}).kamailio.column_names()
    cdr = profile_from_dict({"kamailio": {"mode": "cdr"}}).kamailio.column_names()
    assert transaction[:7] == ("method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time")
    assert "src_user" in transaction and "duration" not in transaction
    assert {"duration", "setuptime", "created"} <= set(cdr)


def test_profiles_are_frozen() -> None:
    profile = Profile()
    with pytest.raises(AttributeError):
        profile.timezone = "Europe/Paris"  # type: ignore[misc]
    with pytest.raises(TypeError):
        profile.freeswitch.direction_map["inbound"] = "inbound"  # type: ignore[index]
