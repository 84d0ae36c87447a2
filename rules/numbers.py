"""Number identity and classification: the one place that decides what a phone number is.

phonenumbers is the reference. The rule engine sees every caller ID and destination of every CDR,
and real traffic repeats caller IDs constantly, so `classify` memoises on the separator-stripped
string: identical answers to the reference by construction (see tests/test_numbers_reference.py)
at the cost of a bounded cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import phonenumbers.timezone
from phonenumbers import PhoneNumberType

SEPARATORS = re.compile(r"[ \-.()]")
# "+" and digits only. No 15-digit cap here: phonenumbers' validity is the reference, and it accepts
# some longer national numbers (German 0800 numbers, for one) that carriers route.
E164_SHAPE = re.compile(r"\+[0-9]+")

NANP_TOLL_FREE_NPAS = frozenset({"800", "833", "844", "855", "866", "877", "888"})

# ARCEP decision 2022-1583: NPV ("numéros polyvalents vérifiés") ranges, national significant number prefixes.
FR_NPV_PREFIXES = (
    "162", "163", "270", "271", "377", "378", "424", "425", "568", "569", "948", "949",
    "9475", "9476", "9477", "9478", "9479",
)

# Ofcom: 09 premium rate, and the 0870-0873 revenue-sharing ranges, may not be presented.
UK_PROHIBITED_PREFIXES = ("9", "870", "871", "872", "873")

# ACMA numbering plan: 13, 1300, 1800 (freephone) and 1900 (premium) are receive-only.
AU_RECEIVE_ONLY_PREFIXES = ("13", "1800", "1900")

NUMBER_TYPE_NAMES = {
    value: name for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)
}


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """What the rules need to know about one number string."""

    e164: str | None  # normalised form when valid, else None
    valid: bool
    region: str | None  # ISO region, e.g. "FR"; None when unknown
    calling_code: int | None
    number_type: str  # phonenumbers PhoneNumberType name, e.g. "TOLL_FREE"; "UNKNOWN" if not parsed
    nanp_toll_free: bool
    fr_npv: bool
    uk_prohibited: bool
    au_receive_only: bool

    @property
    def toll_free(self) -> bool:
        """Toll-free in the phonenumbers sense or by the FCC NANP code list."""
        return self.number_type == "TOLL_FREE" or self.nanp_toll_free

    @property
    def national_number(self) -> str:
        """The national significant number (digits after the calling code), or '' if invalid."""
        if self.e164 is None or self.calling_code is None:
            return ""
        return self.e164[1 + len(str(self.calling_code)):]


def strip_separators(raw: str) -> str:
    """Remove visual separators; they are formatting, not part of the number."""
    return SEPARATORS.sub("", raw)


def classify(raw: str | None) -> NumberInfo:
    """Classify a number written in E.164 (separators allowed). Memoised; see module docstring."""
    text = "" if raw is None else str(raw)
    return _classify_stripped(strip_separators(text))


def classify_with_region(raw: str | None, default_region: str | None) -> NumberInfo:
    """Classify a destination that may be written nationally (PBX exports), using a default region."""
    info = classify(raw)
    if info.valid or not default_region or raw is None:
        return info
    stripped = strip_separators(str(raw))
    if not stripped or stripped.startswith("+"):
        return info
    national = _national_to_e164(stripped, default_region.upper())
    if national is None:
        return info
    return classify(national)


@lru_cache(maxsize=65_536)
def _national_to_e164(stripped: str, region: str) -> str | None:
    """Parse a nationally written number in `region`; None when phonenumbers cannot make it valid."""
    if not stripped.isdigit():
        return None
    try:
        parsed = phonenumbers.parse(stripped, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def classify_reference(raw: str | None) -> NumberInfo:
    """The uncached reference path: phonenumbers on every call. Tests hold `classify` equal to it."""
    text = "" if raw is None else str(raw)
    return _compute(strip_separators(text))


@lru_cache(maxsize=262_144)
def _classify_stripped(stripped: str) -> NumberInfo:
    return _compute(stripped)


@lru_cache(maxsize=65_536)
def valid_calling_code(raw: str) -> int | None:
    """The calling code of `raw` if `classify(raw)` finds it valid, else None: the same phonenumbers
    verdict without the number type and region lookups, for a check that asks only "a valid number of
    this country?" of a destination (tests hold it equal to the reference)."""
    parsed = _parse(strip_separators(raw))
    return None if parsed is None or not parsed[2] else parsed[0].country_code


def _parse(stripped: str) -> tuple[phonenumbers.PhoneNumber, str, bool] | None:
    """phonenumbers' reading of an E.164-shaped string: (parsed, its E.164 form, valid), or None if it
    has not the shape or does not parse. Valid means valid and written exactly in E.164."""
    if not E164_SHAPE.fullmatch(stripped):
        return None
    try:
        parsed = phonenumbers.parse(stripped, None)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return parsed, e164, phonenumbers.is_valid_number(parsed) and e164 == stripped


def _compute(stripped: str) -> NumberInfo:
    invalid = NumberInfo(None, False, None, None, "UNKNOWN", False, False, False, False)
    read = _parse(stripped)
    if read is None:
        return invalid
    parsed, e164, valid = read
    number_type = NUMBER_TYPE_NAMES.get(phonenumbers.number_type(parsed), "UNKNOWN")
    region = phonenumbers.region_code_for_number(parsed)
    code = parsed.country_code
    if not valid:
        # Keep the calling code and region of a parsable-but-invalid number: the summary reports them.
        return NumberInfo(None, False, region, code, number_type, False, False, False, False)
    nsn = e164[1 + len(str(code)):]
    return NumberInfo(
        e164=e164,
        valid=True,
        region=region,
        calling_code=code,
        number_type=number_type,
        nanp_toll_free=code == 1 and nsn[:3] in NANP_TOLL_FREE_NPAS,
        fr_npv=code == 33 and nsn.startswith(FR_NPV_PREFIXES),
        uk_prohibited=code == 44 and nsn.startswith(UK_PROHIBITED_PREFIXES),
        au_receive_only=code == 61 and nsn.startswith(AU_RECEIVE_ONLY_PREFIXES),
    )


def subject_of(direction: str, caller_id: str, destination: str,
               default_region: str | None = None) -> tuple[str, NumberInfo]:
    """The number whose state a record touches, and its classification: the presented CLI normalised
    (as written when invalid), or for an inbound call our number that was called. The engine routes
    state by it, and producers key records by it so that each lands on its state's partition."""
    if direction == "inbound":
        info = classify_with_region(destination, default_region)
        return info.e164 or destination, info
    info = classify(caller_id)
    return info.e164 or caller_id, info


@lru_cache(maxsize=65_536)
def time_zones(e164: str) -> tuple[str, ...]:
    """The IANA zones phonenumbers' geocoding metadata gives a valid number (several for a NANP area
    code that spans zones, a country-wide list for a number it cannot place), or () when it knows none."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = phonenumbers.timezone.time_zones_for_number(parsed)
    return tuple(zone for zone in zones if zone != phonenumbers.timezone.UNKNOWN_TIMEZONE)
