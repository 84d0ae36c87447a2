"""The adapter profile: what a switch's CDR does not say about itself.

A Master.csv row has no time zone, a national number has no country, an `acc` row has no column names.
The profile supplies them, once per source, in one validated YAML file. Unknown keys are errors: a typo
such as `uniquid: false` must not silently shift every column.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml

from rules.cdr import DIRECTIONS
from rules.errors import yaml_error

LEGS = ("a", "b")
ASTERISK_MERGE_KEYS = ("uniqueid", "linkedid", "none")
KAMAILIO_MODES = ("transaction", "cdr")

# Asterisk cdr_csv columns (`build_csv_record`), then the two optional ones.
ASTERISK_BASE_COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
ASTERISK_OPTIONAL_COLUMNS = ("uniqueid", "userfield")
# newcdrcolumns=yes appends these after userfield (cdr_csv.c build_csv_record).
ASTERISK_NEW_COLUMNS = ("peeraccount", "linkedid", "sequence")

# mod_cdr_csv's stock "example" template (autoload_configs/cdr_csv.conf.xml), in order.
FREESWITCH_EXAMPLE_COLUMNS = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec",
    "write_codec",
)

# acc core columns (Kamailio and OpenSIPS), then the extras of Kamailio's default kamailio.cfg.
KAMAILIO_CORE_COLUMNS = ("method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time")
KAMAILIO_DEFAULT_EXTRAS = ("src_user", "src_domain", "src_ip", "dst_ouser", "dst_user", "dst_domain")
OPENSIPS_CDR_COLUMNS = ("duration", "ms_duration", "setuptime", "created")


# Canonical fields a switch does not have a column for, but a user can put in one (a dialplan variable, a
# spare column, a contact attribute): `fields: {purpose: cidwatch_purpose}` names where each one is.
SOURCE_FIELDS = ("campaign", "purpose", "ingress_country")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class AsteriskOptions:
    """cdr_csv writes uniqueid and userfield only when loguniqueid/loguserfield are on; both shift columns."""

    uniqueid: bool = True
    userfield: bool = True
    # cdr_csv.conf newcdrcolumns=yes (default no): peeraccount, linkedid and sequence follow.
    newcdrcolumns: bool = False
    # Asterisk 12+ writes one row per party a call rang (Dial(A&B), ring groups, queues), all with the
    # caller's uniqueid and linkedid: those rows are one call. `uniqueid` or `linkedid` merges them on that
    # column; `none` keeps one record per row.
    merge_parties: str = "uniqueid"
    # Stream only, when a shipper sends one line per message: seconds the last call of a quiet partition,
    # all its rows so far unanswered, waits for more of them (streams/parties.py).
    merge_wait_seconds: float = 10.0
    # Where the presented caller ID is: `src`, or a column the dialplan fills, e.g. userfield with
    # Set(CDR(userfield)=${CALLERID(num)}) after the outbound CLI is set. Empty values fall back to src, clid.
    caller_column: str = "src"
    # dcontext values where calls from the PSTN land (FreePBX and the Asterisk samples use these).
    inbound_contexts: tuple[str, ...] = ("from-pstn", "from-trunk")


@dataclass(frozen=True)
class FreeswitchOptions:
    """Which leg to keep and how FreeSWITCH's per-leg direction maps to the call's direction."""

    leg: str = "a"
    # FreeSWITCH's direction is the leg's view of the switch: a phone's A-leg is "inbound" even when it
    # dials the PSTN, and an originate'd A-leg towards a gateway is "outbound". Both are outbound calls.
    direction_map: Mapping[str, str] = field(
        default_factory=lambda: _frozen({"inbound": "outbound", "outbound": "outbound"})
    )
    # Dialplan contexts where PSTN calls land (vanilla FreeSWITCH: "public"); those calls are inbound.
    inbound_contexts: tuple[str, ...] = ("public",)
    # mod_cdr_csv template columns, in order (freeswitch-csv only).
    columns: tuple[str, ...] = FREESWITCH_EXAMPLE_COLUMNS
    # mod_json_cdr's `encode-values` (true in the stock json_cdr.conf.xml and in the module's default):
    # every value under `variables` is URL-encoded and is decoded here (freeswitch-json only).
    encoded_values: bool = True


@dataclass(frozen=True)
class TwilioOptions:
    """Twilio direction values; Elastic SIP Trunking "terminating" calls go *to* the PSTN."""

    direction_map: Mapping[str, str] = field(
        default_factory=lambda: _frozen({
            "inbound": "inbound",
            "outbound-api": "outbound",
            "outbound-dial": "outbound",
            "trunking-terminating": "outbound",
            "trunking-originating": "inbound",
        })
    )


@dataclass(frozen=True)
class KamailioOptions:
    """acc rows carry no column names: the profile gives them, and where the numbers are."""

    columns: tuple[str, ...] | None = None  # None: core + Kamailio default extras (+ CDR columns in cdr mode)
    caller_column: str = "src_user"
    callee_column: str = "dst_user"
    separator: str | None = None  # None: "|" when the first row has pipes (db_flatstore), else ","
    mode: str = "transaction"
    # acc rows say no direction. A proxy that also relays calls from carriers to a PBX names that traffic
    # here; a row matching any of the three is inbound (its caller is a customer, never a CLI we present):
    # the `src_ip` extra in one of these addresses or networks, the `src_domain` (From domain) in this
    # list, or the callee (callee_column) starting with one of these prefixes (the PBX's DIDs).
    inbound_source_ips: tuple[str, ...] = ()
    inbound_from_domains: tuple[str, ...] = ()
    inbound_to_prefixes: tuple[str, ...] = ()

    def column_names(self) -> tuple[str, ...]:
        """The configured columns, or the defaults for the mode."""
        if self.columns is not None:
            return self.columns
        if self.mode == "cdr":
            return KAMAILIO_CORE_COLUMNS + OPENSIPS_CDR_COLUMNS + KAMAILIO_DEFAULT_EXTRAS
        return KAMAILIO_CORE_COLUMNS + KAMAILIO_DEFAULT_EXTRAS


@dataclass(frozen=True)
class Profile:
    """One source's context. Defaults are the safe reading: UTC, no region, 6-digit extensions."""

    timezone: str = "UTC"
    default_region: str | None = None
    extension_max_digits: int = 6
    tenant: str | None = None
    # canonical field -> where this source keeps it: an Asterisk cdr_csv column (userfield, accountcode),
    # a FreeSWITCH channel variable (JSON) or template column (CSV), a Kamailio acc extra column, a
    # top-level key of a Twilio Call resource, an Amazon Connect contact attribute. Empty values are unset.
    fields: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    asterisk: AsteriskOptions = field(default_factory=AsteriskOptions)
    freeswitch: FreeswitchOptions = field(default_factory=FreeswitchOptions)
    twilio: TwilioOptions = field(default_factory=TwilioOptions)
    kamailio: KamailioOptions = field(default_factory=KamailioOptions)

    @property
    def zone(self) -> ZoneInfo:
        """The switch's zone for local wall-clock times (validated at load)."""
        return ZoneInfo(self.timezone)


SECTIONS: dict[str, type] = {
    "asterisk": AsteriskOptions,
    "freeswitch": FreeswitchOptions,
    "twilio": TwilioOptions,
    "kamailio": KamailioOptions,
}


def load_profile(path: Path | None) -> Profile:
    """Read a profile YAML file; None gives the defaults. Raises ProfileError naming the bad key."""
    if path is None:
        return Profile()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(yaml_error(path, exc)) from exc
    try:
        return profile_from_dict(data or {})
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from exc


def profile_from_dict(data: Any) -> Profile:
    """Build a Profile from parsed YAML, validating every key and value."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"a profile is a mapping of keys, got {type(data).__name__}")
    _reject_unknown(data, Profile, "")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in SECTIONS:
            values[name] = _section(name, value)
        else:
            values[name] = _top_value(name, value)
    return Profile(**values)


def _reject_unknown(data: Mapping[str, Any], cls: type, prefix: str) -> None:
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            raise ProfileError(f"unknown profile key '{prefix}{key}' (known: {', '.join(known)})")


def _top_value(name: str, value: Any) -> Any:
    if name == "timezone":
        return _timezone(value)
    if name == "default_region":
        return _region(value)
    if name == "fields":
        return _source_fields(value)
    if name == "extension_max_digits":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 15:
            raise ProfileError(f"extension_max_digits: expected a whole number 0-15, got {value!r}")
        return value
    return _optional_text(name, value)


def _source_fields(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"fields: expected a mapping such as {{purpose: cidwatch_purpose}}, got {value!r}")
    for name, source in value.items():
        if name not in SOURCE_FIELDS:
            raise ProfileError(f"fields.{name}: not a field a source can supply (one of {', '.join(SOURCE_FIELDS)})")
        _required_text(f"fields.{name}", source)
    return _frozen({str(name): str(source) for name, source in value.items()})


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"timezone: expected an IANA zone name such as Europe/Paris, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProfileError(f"timezone: unknown time zone {value!r}") from exc
    return value


def _region(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ProfileError(f"default_region: expected an ISO region such as FR, got {value!r}")
    return value.upper()


def _optional_text(key: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ProfileError(f"{key}: expected text, got {value!r}")


def _section(section: str, data: Any) -> Any:
    cls = SECTIONS[section]
    if not isinstance(data, Mapping):
        raise ProfileError(f"{section}: expected a mapping of options, got {data!r}")
    _reject_unknown(data, cls, f"{section}.")
    values = {key: _option(f"{section}.{key}", value) for key, value in data.items()}
    if "direction_map" in values:  # a partial map overrides entries; the other defaults stay
        values["direction_map"] = _frozen({**cls().direction_map, **values["direction_map"]})
    return cls(**values)


def _option(key: str, value: Any) -> Any:
    """Validate one format option by its name; each option has exactly one accepted shape."""
    name = key.split(".", 1)[1]
    if name in ("uniqueid", "userfield", "encoded_values", "newcdrcolumns"):
        if not isinstance(value, bool):
            raise ProfileError(f"{key}: expected true or false, got {value!r}")
        return value
    if name == "inbound_source_ips":
        networks = _text_list(key, value, allow_none=False) or ()
        for text in networks:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ProfileError(f"{key}: expected IP addresses or networks such as 192.0.2.10 or "
                                   f"198.51.100.0/24, got {text!r}") from None
        return networks
    if name in ("inbound_contexts", "columns", "inbound_from_domains", "inbound_to_prefixes"):
        return _text_list(key, value, allow_none=name == "columns" and key.startswith("kamailio."))
    if name == "direction_map":
        return _direction_map(key, value)
    if name == "leg":
        return _choice(key, value, LEGS)
    if name == "mode":
        return _choice(key, value, KAMAILIO_MODES)
    if name == "merge_parties":
        return _choice(key, value, ASTERISK_MERGE_KEYS)
    if name == "merge_wait_seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
            raise ProfileError(f"{key}: expected seconds, more than 0 and at most 600, got {value!r}")
        return float(value)
    if name == "separator":
        if value is not None and (not isinstance(value, str) or len(value) != 1):
            raise ProfileError(f"{key}: expected one character such as '|' or ',', got {value!r}")
        return value
    if key == "asterisk.caller_column":
        return _choice(key, value, ASTERISK_BASE_COLUMNS + ASTERISK_OPTIONAL_COLUMNS + ASTERISK_NEW_COLUMNS)
    return _required_text(key, value)  # kamailio caller_column, callee_column


def _text_list(key: str, value: Any, *, allow_none: bool) -> tuple[str, ...] | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ProfileError(f"{key}: expected a list of names, got {value!r}")
    return tuple(value)


def _direction_map(key: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"{key}: expected a mapping such as {{inbound: outbound}}, got {value!r}")
    for source, target in value.items():
        if target not in DIRECTIONS:
            raise ProfileError(f"{key}.{source}: must be one of {', '.join(DIRECTIONS)}, got {target!r}")
    return _frozen({str(source): str(target) for source, target in value.items()})


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ProfileError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _required_text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{key}: expected a name, got {value!r}")
    return value
