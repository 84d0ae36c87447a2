"""Adapters: what real switches and platforms write, converted to the canonical CDR.

One module per format, registered here by name. `replay` and `produce` call `read_source` on whole
files (where Connect copies are de-duplicated and Kamailio INVITE/BYE rows are joined); the stream calls
`convert_raw` on one Kafka message of raw records. Every record an adapter emits has passed
`rules.cdr.parse_cdr`; everything else is a reject (malformed, with its location and reason) or a
skip (well formed but not a call attempt we judge, counted so nothing disappears silently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from streams.adapters import (
    asterisk,
    connect_ctr,
    freeswitch_csv,
    freeswitch_json,
    kamailio_acc,
    twilio,
)
from streams.adapters.common import SourceItem, decode, read_bytes
from streams.adapters.detect import detect_format
from streams.adapters.profile import Profile, ProfileError, load_profile

Reader = Callable[..., Iterator[SourceItem]]

READERS: dict[str, Reader] = {
    asterisk.FORMAT: asterisk.read,
    freeswitch_csv.FORMAT: freeswitch_csv.read,
    freeswitch_json.FORMAT: freeswitch_json.read,
    connect_ctr.FORMAT: connect_ctr.read,
    twilio.FORMAT: twilio.read,
    kamailio_acc.FORMAT: kamailio_acc.read,
}
FORMATS: tuple[str, ...] = tuple(READERS)

__all__ = [
    "FORMATS",
    "Profile",
    "ProfileError",
    "SourceItem",
    "convert_raw",
    "detect_format",
    "load_profile",
    "read_source",
]


def _reader(fmt: str) -> Reader:
    try:
        return READERS[fmt]
    except KeyError:
        raise ValueError(f"unknown input format {fmt!r} (known: {', '.join(FORMATS)})") from None


def read_source(path: Path, fmt: str, profile: Profile) -> Iterator[SourceItem]:
    """Convert a whole file: joins and de-duplications that need every record of the file apply."""
    reader = _reader(fmt)
    text = decode(read_bytes(Path(path)))
    return reader(text, profile, stream=False)


def convert_raw(fmt: str, value: bytes, profile: Profile) -> list[SourceItem]:
    """Convert one Kafka message of raw records (one or more rows or documents).

    Connect copies are all converted (the caller keeps the first per call_id); Kamailio rows are joined
    only within the message, so an INVITE whose BYE comes later is an answered call of duration 0.
    """
    reader = _reader(fmt)
    return list(reader(decode(value), profile, stream=True))
