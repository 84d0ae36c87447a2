"""What the engine remembers: one `SubjectState` per subject (a normalised caller ID, or for inbound
calls our number called), read and written whole.

One value per key is what lets the stream write a subject's state once per batch and recover it from
one changelog record, and what makes replay and the stream equal by construction: both hold the same
type. Everything in it is pruned as event time advances, so it stays bounded for a CLI that calls
forever: call ids older than the de-duplication horizon, counts and fired marks of windows that
ended more than that horizon ago, and the spam-risk buckets older than 24 h. Blocks and their
episode counters are bounded by the rules and scopes.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rules.errors import CidwatchError
from rules.risk import RiskConfig, RiskState
from rules.tally import Tally

STATE_VERSION = 1
PRUNE_EVERY_S = 3600.0  # event time between two prunes of one subject: amortised O(1) per call
_SEEN = struct.Struct("<qd")  # call id hash, first seen (epoch seconds)


class StateError(CidwatchError, ValueError):
    """A stored state this version cannot read (written by another version, or damaged)."""


_CALL_HASH = hashlib.blake2b(digest_size=8)  # copied for each call id: cheaper than making one


def call_key(call_id: str) -> int:
    """64-bit hash of a call id: the de-duplication memory holds no call id in clear, in 12 bytes."""
    hasher = _CALL_HASH.copy()
    hasher.update(call_id.encode("utf-8", "surrogatepass"))
    return int.from_bytes(hasher.digest(), "little", signed=True)


def fired_key(rule_id: str, severity: str, scope: str, window: str, block: bool = False) -> str:
    """The mark in `SubjectState.fired` of a rule's decision made at one severity, for one scope (its
    canonical text), in one window: an alert, or with `block` a time-boxed block."""
    return f"{rule_id}|{severity}|{scope}|{window}|block" if block else f"{rule_id}|{severity}|{scope}|{window}"


def pack_seen(seen: Mapping[int, float]) -> bytes:
    """The changelog form of call keys and their first-seen times: 12 bytes each, in the dict's order."""
    return b"".join(_SEEN.pack(key, first) for key, first in seen.items())


class SeenCalls(dict[int, float]):
    """`SubjectState.seen` (call key -> first seen, in insertion order, which is about event time), that
    keeps its packed changelog form (`pack_seen`) up to date as calls are added and pruned.

    Why: a state is written whole to the changelog after every batch its subject called in, and a busy
    caller ID remembers every call of the de-duplication horizon (48 h: hundreds). Packing them all in a
    Python loop at each write was the largest part of a stream worker's state writes; here a new call adds
    its 12 bytes and a prune of the oldest cuts them from the front, so a write costs what changed.

    Exact whatever is done to the dict: any other change (a key set again, a deletion that is not the
    oldest entry, a dict method that bypasses `__setitem__`/`__delitem__`) marks the bytes stale, and the
    next `packed()` packs the dict anew. A copy or pickle is a plain rebuild from the items.
    """

    __slots__ = ("_bytes", "_fresh", "_start")

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self._bytes = bytearray()
        self._start = 0  # bytes of entries deleted from the front, cut at the next `packed()`
        self._fresh = not self

    @classmethod
    def unpack(cls, packed: bytes) -> SeenCalls:
        """The inverse of `packed()` (struct.error on a length that is not a multiple of 12); `packed`
        is kept as the bytes when it holds no call key twice."""
        seen = cls(_SEEN.iter_unpack(packed))
        if len(seen) * _SEEN.size == len(packed):
            seen._bytes, seen._fresh = bytearray(packed), True
        return seen

    def packed(self) -> bytes:
        if not self._fresh:
            self._bytes, self._start, self._fresh = bytearray(pack_seen(self)), 0, True
        elif self._start:
            del self._bytes[:self._start]
            self._start = 0
        return bytes(self._bytes)

    def __setitem__(self, key: int, first: float) -> None:
        if self._fresh:
            if key in self:
                self._fresh = False  # a value changed in the middle: pack anew
            else:
                self._bytes += _SEEN.pack(key, first)
        super().__setitem__(key, first)

    def __delitem__(self, key: int) -> None:
        if self._fresh:
            start = self._start
            if len(self._bytes) - start >= _SEEN.size and _SEEN.unpack_from(self._bytes, start)[0] == key:
                self._start = start + _SEEN.size  # the oldest entry (a prune)
            else:
                self._fresh = False
        super().__delitem__(key)

    def _stale(self) -> None:
        self._fresh = False

    def clear(self) -> None:
        self._stale()
        super().clear()

    def pop(self, *args: Any) -> Any:
        self._stale()
        return super().pop(*args)

    def popitem(self) -> tuple[int, float]:
        self._stale()
        return super().popitem()

    def setdefault(self, key: int, default: Any = None) -> Any:
        self._stale()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._stale()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> SeenCalls:
        self._stale()
        return super().__ior__(other)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SeenCalls, (list(self.items()),))


def due_of(timed: Iterable[float], expires: float | None, clears: Iterable[float],
           with_clears: bool = True) -> float | None:
    """When a subject's timers next have something to do: the earliest time-boxed block's `until`, keyed
    state's expiry and (`with_clears`) threshold clear. Without the clears, the stream's wall clock's: only
    what comes before every planned clear, which event time makes (streams/clears.py), so the clock never
    passes one (a clear may lift a block before its `until`). Also read off a stored state's fields."""
    times = [*timed, *(() if expires is None else (expires,))]
    planned = list(clears)
    if planned:
        first = min(planned)
        times = [*times, first] if with_clears else [t for t in times if t < first]
    return min(times) if times else None


class SubjectState:
    """One subject's memory. Mutated in place by the engine; `to_dict`/`from_dict` for the changelog."""

    __slots__ = ("attempts", "blocks", "clears", "counts", "episodes", "expires", "fired", "pruned_at", "risk",
                 "seen", "tallies", "timed")

    def __init__(self) -> None:
        self.seen: dict[int, float] = SeenCalls()  # call key -> started_at (insertion order ~ event time)
        self.counts: dict[str, list[float]] = {}  # "rule|window" -> [count, window end]
        self.fired: dict[str, float] = {}  # alert or time-boxed block already made in a window -> its end
        self.blocks: dict[str, dict[str, Any]] = {}  # block key -> the block decision in force
        self.timed: dict[str, float] = {}  # block key -> `until` (epoch s) of the time-boxed ones
        self.episodes: dict[str, int] = {}  # block key -> standing blocks made so far (ids stay unique)
        self.risk: RiskState | None = None
        self.pruned_at = 0.0
        # Keyed states (a rule's count per tenant and consumer, `RuleSpec.keyed`): rule id -> the times of
        # the attempts still inside its window, and when the whole state may be forgotten.
        self.attempts: dict[str, list[float]] = {}
        self.expires: float | None = None
        # Threshold rules (rules/threshold.py): rule id (and, per destination country, "|CC") -> its tally.
        self.tallies: dict[str, Tally] = {}
        # Their levels in force on a sliding window: "tally|level index" -> the event time at which the level
        # clears if its key makes no further call (rules/threshold.py `clear_plan`), for event time to act on.
        self.clears: dict[str, float] = {}

    def is_empty(self) -> bool:
        return not (self.seen or self.counts or self.fired or self.blocks or self.episodes or self.risk
                    or self.attempts or self.tallies)

    def due(self, clears: bool = True) -> float | None:
        """The earliest `until` of this subject's time-boxed blocks, when a keyed state expires, and (with
        `clears`) when a threshold level clears: for the timers' index (`due_of`)."""
        return due_of(self.timed.values(), self.expires, self.clears.values(), clears)

    def forget(self) -> None:
        """Drop everything: a keyed state past `expires` (no attempt left in its window) is not kept."""
        self.seen, self.counts, self.fired, self.attempts, self.tallies, self.clears = SeenCalls(), {}, {}, {}, {}, {}
        self.expires = None

    def prune(self, now: float, horizon: float) -> None:
        """Forget what can no longer matter at event time `now`: call ids first seen more than
        `horizon` seconds ago, and the counts and fired marks of windows that ended that long ago."""
        self.pruned_at = now
        cutoff = now - horizon
        stale = []
        for key, first in self.seen.items():  # insertion order: stop at the first recent one
            if first >= cutoff:
                break
            stale.append(key)
        for key in stale:
            del self.seen[key]
        for key in [k for k, (_n, end) in self.counts.items() if end < cutoff]:
            del self.counts[key]
        for key in [k for k, end in self.fired.items() if end < cutoff]:
            del self.fired[key]
        for key in [k for k, tally in self.tallies.items() if tally.stale_at < now and not tally.active]:
            del self.tallies[key]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, compact: call keys packed in base64 (12 bytes each)."""
        return {"v": STATE_VERSION, "seen": base64.b64encode(self._packed_seen()).decode(), **self._fields()}

    def to_record(self) -> tuple[dict[str, Any], bytes]:
        """`to_dict()` and its compact JSON, the changelog record: the bytes `json.dumps(value,
        separators=(",", ":"))` writes. The base64 of the call keys, a busy caller ID's largest field (16
        characters a call of the last 48 h), is copied in rather than run through the encoder, which
        would scan every character of it for one to escape (base64 has none)."""
        seen = base64.b64encode(self._packed_seen())
        fields = self._fields()
        value = {"v": STATE_VERSION, "seen": seen.decode(), **fields}
        rest = json.dumps(fields, separators=(",", ":")).encode()  # never "{}": `counts` and the rest are always in
        return value, b'{"v":%d,"seen":"%b",%b' % (STATE_VERSION, seen, rest[1:])

    def _packed_seen(self) -> bytes:
        seen = self.seen
        return seen.packed() if isinstance(seen, SeenCalls) else pack_seen(seen)

    def _fields(self) -> dict[str, Any]:
        """`to_dict()` after its version and call keys."""
        return {
            "counts": self.counts,
            "fired": self.fired,
            "blocks": self.blocks,
            "timed": self.timed,
            "episodes": self.episodes,
            "risk": None if self.risk is None else self.risk.to_dict(),
            "pruned_at": self.pruned_at,
            **({"attempts": self.attempts, "expires": self.expires} if self.attempts else {}),
            **({"tallies": {k: t.to_dict() for k, t in self.tallies.items()}, "expires": self.expires}
               if self.tallies else {}),
            **({"clears": self.clears} if self.clears else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], risk_config: RiskConfig | None = None,
                  hash_key: bytes = b"") -> SubjectState:
        if not isinstance(data, Mapping) or data.get("v") != STATE_VERSION:
            version = data.get("v") if isinstance(data, Mapping) else None
            raise StateError(f"subject state: unsupported version {version!r}")
        state = cls()
        try:
            packed = base64.b64decode(data.get("seen") or "")
            state.seen = SeenCalls.unpack(packed)
            state.counts = {str(k): [float(v[0]), float(v[1])] for k, v in (data.get("counts") or {}).items()}
            state.fired = {str(k): float(v) for k, v in (data.get("fired") or {}).items()}
            state.blocks = {str(k): dict(v) for k, v in (data.get("blocks") or {}).items()}
            state.timed = {str(k): float(v) for k, v in (data.get("timed") or {}).items()}
            state.episodes = {str(k): int(v) for k, v in (data.get("episodes") or {}).items()}
            risk = data.get("risk")
            state.risk = None if risk is None else RiskState.from_dict(risk, risk_config, hash_key)
            state.pruned_at = float(data.get("pruned_at") or 0.0)
            state.attempts = {str(k): [float(t) for t in v] for k, v in (data.get("attempts") or {}).items()}
            state.tallies = {str(k): Tally.from_dict(v) for k, v in (data.get("tallies") or {}).items()}
            state.clears = {str(k): float(v) for k, v in (data.get("clears") or {}).items()}
            expires = data.get("expires")
            state.expires = None if expires is None else float(expires)
        except (TypeError, ValueError, KeyError, struct.error) as exc:
            raise StateError(f"subject state: unreadable ({exc})") from exc
        return state


class DictState:
    """Every subject's state in memory, with an index of due time-boxed blocks: `replay` and tests."""

    def __init__(self) -> None:
        self.subjects: dict[str, SubjectState] = {}
        self._due: list[tuple[float, str]] = []  # (until, subject); stale entries are skipped

    def get(self, subject: str) -> SubjectState:
        state = self.subjects.get(subject)
        if state is None:
            state = self.subjects[subject] = SubjectState()
        return state

    def items(self) -> Iterator[tuple[str, SubjectState]]:
        return iter(list(self.subjects.items()))

    def note_due(self, subject: str, until: float) -> None:
        heapq.heappush(self._due, (until, subject))

    def has_due(self, now: float) -> bool:
        return bool(self._due) and self._due[0][0] <= now

    def pop_due(self, now: float) -> list[str]:
        """Subjects that may hold a block due by `now`, earliest first, each once."""
        subjects: list[str] = []
        while self._due and self._due[0][0] <= now:
            _until, subject = heapq.heappop(self._due)
            if subject not in subjects:
                subjects.append(subject)
        return subjects
