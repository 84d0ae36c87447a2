"""Spam-label risk: a per-caller-ID score from 0 to 100 over a rolling 24 h, with a 1 h burst view.

A heuristic built from public vendor guidance (see docs/spam-risk.md), not the analytics engines'
model: Hiya, TNS and First Orion do not publish theirs. Pure and deterministic: no I/O and no wall
clock, the caller passes event times, so replay and stream give the same score for the same calls.

State is bounded whatever the traffic: counters in fixed time buckets (5 minutes over 24 h) and, for
distinct destinations, at most `distinct_cap` 32-bit hashes with the hour each was last called (exact
up to the cap; past it, new destinations are counted as distinct, an upper bound). Destinations
arrive already hashed and are hashed again to 32 bits here: no destination is ever stored in clear.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

FACTORS = (
    "volume", "burst", "answer_rate", "short_calls", "rejections", "attestation", "distinct_destinations",
)

# Bucket counters, in this order: calls, answered, short answered, 603, 607, 608, attested A, B, C.
CALLS, ANSWERED, SHORT, R603, R607, R608, ATT_A, ATT_B, ATT_C = range(9)
COUNTERS = 9
REJECTION_INDEX = {603: R603, 607: R607, 608: R608}
ATTESTATION_INDEX = {"A": ATT_A, "B": ATT_B, "C": ATT_C}
# In memory a bucket's counters are packed into one integer, FIELD bits each (counter i is
# `(packed >> FIELD * i) & MASK`): one addition counts a call, one subtraction drops a bucket.
FIELD = 40
MASK = (1 << FIELD) - 1
ONE = tuple(1 << FIELD * i for i in range(COUNTERS))
ONE_CALL, ONE_ANSWERED, ONE_ANSWERED_SHORT = ONE[CALLS], ONE[CALLS] + ONE[ANSWERED], \
    ONE[CALLS] + ONE[ANSWERED] + ONE[SHORT]  # what one call adds (answered or not, short or not)
REJECTION_ONE = {code: ONE[i] for code, i in REJECTION_INDEX.items()}
ATTESTATION_ONE = {letter: ONE[i] for letter, i in ATTESTATION_INDEX.items()}


SHIFT_ANSWERED, SHIFT_SHORT, SHIFT_603, SHIFT_607, SHIFT_608, SHIFT_A, SHIFT_B, SHIFT_C = (
    FIELD * i for i in (ANSWERED, SHORT, R603, R607, R608, ATT_A, ATT_B, ATT_C))


def _pack(counts: list[int]) -> int:
    return sum(n << FIELD * i for i, n in enumerate(counts))


def pack(counts: list[int]) -> int:
    if len(counts) != COUNTERS or not all(0 <= n <= MASK for n in counts):
        raise ValueError("risk state: a bucket needs 9 counters, each from 0 to 2**40 - 1")
    return sum(n << FIELD * i for i, n in enumerate(counts))


def unpack(packed: int) -> list[int]:
    return [(packed >> FIELD * i) & MASK for i in range(COUNTERS)]
STATE_VERSION = 1


def _default_weights() -> dict[str, float]:
    return {
        "volume": 0.20, "burst": 0.15, "answer_rate": 0.20, "short_calls": 0.15,
        "rejections": 0.15, "attestation": 0.10, "distinct_destinations": 0.05,
    }


@dataclass(frozen=True)
class RiskConfig:
    """Weights and thresholds of the model. Every default is written down once, here.

    A ramp `(lo, hi)` maps a measure linearly onto a factor between 0 (at or below `lo`) and 1 (at or
    above `hi`); `answer_rate` runs the other way (a *low* answer rate is the risk).
    """

    daily_calls_guidance: float = 100.0  # vendor guidance: more than ~100 calls a day raises risk
    hourly_calls_guidance: float = 100.0  # vendor guidance: bursts of ~100 calls in an hour
    volume_ramp: tuple[float, float] = (0.5, 1.5)  # multiples of the daily guidance: 50 -> 0, 150 -> 1
    burst_ramp: tuple[float, float] = (0.5, 1.0)  # multiples of the hourly guidance: 50 -> 0, 100 -> 1
    answer_rate_ok: float = 0.35  # at or above: no risk from the answer rate
    answer_rate_bad: float = 0.10  # at or below: full risk
    short_call_s: float = 6.0  # "many calls under 5-6 seconds"
    short_share_ramp: tuple[float, float] = (0.10, 0.50)  # share of answered calls that are short
    rejection_weights: dict[int, float] = field(default_factory=lambda: {603: 0.5, 607: 1.0, 608: 1.0})
    rejection_share_ramp: tuple[float, float] = (0.0, 0.10)  # weighted rejections per call
    attestation_weights: dict[str, float] = field(default_factory=lambda: {"A": 0.0, "B": 0.5, "C": 1.0})
    distinct_ratio_ramp: tuple[float, float] = (0.8, 1.0)  # distinct destinations per call
    min_calls: int = 20  # ratio factors are scaled down below this many calls (attested calls)
    min_answered: int = 10  # the short-call factor is scaled down below this many answered calls
    weights: dict[str, float] = field(default_factory=_default_weights)
    warning_at: float = 70.0  # the spam-label risk rule's warning threshold (its pack row decides)
    critical_at: float = 85.0  # the spam-label risk rule's critical threshold (its pack row decides)
    window_s: int = 86_400
    bucket_s: int = 300
    burst_s: int = 3_600
    distinct_slot_s: int = 3_600  # destinations remember the hour they were last called
    distinct_cap: int = 512  # destinations tracked exactly per caller ID

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FACTORS)
        if unknown:
            raise ValueError(f"risk config: unknown factor weight(s) {', '.join(sorted(unknown))}")
        if sum(self.weights.values()) <= 0 or min(self.weights.values(), default=0) < 0:
            raise ValueError("risk config: weights must be non-negative and not all zero")
        for name in ("window_s", "burst_s", "distinct_slot_s"):
            if getattr(self, name) % self.bucket_s:
                raise ValueError(f"risk config: {name} must be a multiple of bucket_s")
        if self.window_s % self.distinct_slot_s:
            raise ValueError("risk config: window_s must be a multiple of distinct_slot_s")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskConfig:
        """Build from configuration (YAML/JSON): unknown keys are errors, lists become ramps."""
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"risk config: unknown key(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key.endswith("_ramp"):
                value = tuple(float(v) for v in value)
                if len(value) != 2 or value[0] >= value[1]:
                    raise ValueError(f"risk config: {key} must be [lo, hi] with lo < hi")
            elif key == "weights":
                value = {**_default_weights(), **{str(k): float(v) for k, v in value.items()}}
            elif key == "rejection_weights":
                value = {int(k): float(v) for k, v in value.items()}
            elif key == "attestation_weights":
                value = {str(k).upper(): float(v) for k, v in value.items()}
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class RiskScore:
    """A score with its breakdown: `factors` are points (they add up to `score`), `inputs` the measures."""

    score: float
    factors: dict[str, float]
    inputs: dict[str, float] = field(default_factory=dict)

    def severity(self, config: RiskConfig | None = None) -> str | None:
        """The alert severity this score deserves (critical, warning or None) under `config`."""
        config = config or DEFAULT_CONFIG
        if self.score >= config.critical_at:
            return "critical"
        if self.score >= config.warning_at:
            return "warning"
        return None


DEFAULT_CONFIG = RiskConfig()


def ramp(value: float, low: float, high: float) -> float:
    """Linear between `low` (0) and `high` (1), clamped: the shape of every factor."""
    return min(1.0, max(0.0, (value - low) / (high - low)))


_HASHERS: dict[bytes, Any] = {}


def _hasher(key: bytes) -> Any:
    """A blake2b of 4 bytes keyed with `key`, fed nothing yet: copying it is cheaper than making one."""
    hasher = _HASHERS.get(key)
    if hasher is None:
        hasher = _HASHERS[key] = hashlib.blake2b(digest_size=4, key=key)
    return hasher


def destination_hash(destination: str, key: bytes = b"") -> int:
    """32-bit hash of a destination, keyed when a key is given: stable across processes, unlike hash().
    Only this hash is stored, never the number."""
    data = destination.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=4, key=key).digest(), "big")


def _epoch(moment: datetime, name: str) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware")
    return moment.timestamp()


# An upper bound of the score adds this to the exact points it starts from: the score is rounded to
# 0.1 (at most +0.05), and 0.01 covers the float error of the bound's own arithmetic.
BOUND_SLACK = 0.06


class RiskState:
    """One caller ID's recent traffic, in bounded memory; serialisable for a changelog table.

    Scores are meant for `now` at or after the newest call added (the stream's event time). Every
    call updates running sums (the 24 h totals, the calls of the hour ending at the newest bucket, the
    busiest hour, the distinct destinations), so `latest_value` costs the same whatever the history:
    O(1) amortised per call. Buckets are kept in order and leave from the oldest, destinations by the hour
    slot they were last called in, and the busiest hour is only recomputed when the run that made it
    leaves the window.

    Most calls need no score at all, only the certainty that it stays below a threshold: `ceiling`
    bounds the score from the last one computed and the number of calls added or dropped since (each
    factor moves by at most a known step per call), without computing any factor.
    """

    __slots__ = (
        "_c", "_ceiling", "_changes", "_hasher", "_horizon", "_latest", "_overflow_total", "_packed",
        "_peak", "_peak_end", "_prune_at", "_recent", "_rows", "_slope", "_slot_heap", "_slots", "_total", "config",
        "hash_key", "high_water", "late", "overflow", "seen",
    )

    def __init__(self, config: RiskConfig | None = None, hash_key: bytes = b"") -> None:
        self.config = config or DEFAULT_CONFIG
        self.hash_key = hash_key
        self._packed: dict[int, int] = {}  # bucket index -> its counters, packed (see `buckets`); by index
        self.seen: dict[int, int] = {}  # destination hash -> hour slot it was last called in
        self.overflow: dict[int, int] = {}  # hour slot -> calls to untracked destinations (cap reached)
        self.high_water: int | None = None  # newest bucket index seen
        self.late = 0  # records dropped because older than the window
        self._c = _constants(self.config)
        self._hasher = _hasher(hash_key)
        # Running sums behind the high-water mark, kept as calls arrive.
        self._total = 0  # the window's counters, packed
        self._slots: dict[int, list[int]] = {}  # hour slot -> tracked destinations called in it (and maybe later)
        # Hour slots of `_slots` and `overflow`, to expire the oldest first (some may be gone already): its
        # smallest is a lower bound of every slot held.
        self._slot_heap: list[int] = []
        self._prune_at: float = math.inf  # the high-water mark from which `_prune` has something to drop
        self._recent = 0  # calls in the sliding hour ending at the high-water bucket
        self._peak: int | None = 0  # the busiest sliding hour in the window; None: recompute
        self._peak_end = 0  # the newest bucket ending a run of `_peak` calls
        self._overflow_total = 0
        # Bucket index -> (packed counters, the row `to_dict` wrote for them): a stream worker writes a
        # busy CLI's state once per batch, and only the newest bucket has changed since the last time.
        self._rows: dict[int, tuple[int, list[int]]] = {}
        self._latest: float | None = None  # cached `latest_value`
        # The bound: `_ceiling + _changes * _slope` while `_changes` (calls added or dropped since the
        # last score computed) is at most `_horizon`; -1: no bound.
        self._ceiling = 0.0
        self._slope = 0.0
        self._changes = 0
        self._horizon = -1

    def add(
        self,
        started_at: datetime,
        answered: bool,
        duration_s: float,
        sip_code: int | None,
        attestation: str | None,
        destination: str,
    ) -> bool:
        """Count one outbound call. Returns False (and counts it in `late`) when it is older than
        the window behind the newest call seen: lateness is decided here, never silently merged."""
        return self.add_at(_epoch(started_at, "started_at"), answered, duration_s, sip_code, attestation,
                           destination)

    def add_at(
        self,
        seconds: float,
        answered: bool,
        duration_s: float,
        sip_code: int | None,
        attestation: str | None,
        destination: str,
    ) -> bool:
        """`add` with the start as epoch seconds (the engine has it already)."""
        c = self._c
        index = math.floor(seconds / c.bucket_s)
        high = self.high_water
        if high is None or index > high:
            self._advance(index)
            high = index
        elif index <= high - c.window_buckets:
            self.late += 1
            return False
        # Count it in its bucket and in the running sums.
        delta = (ONE_ANSWERED_SHORT if duration_s < c.short_call_s else ONE_ANSWERED) if answered else ONE_CALL
        if sip_code is not None:
            delta += REJECTION_ONE.get(sip_code, 0)
        if attestation:
            attested = ATTESTATION_ONE.get(attestation)
            delta += attested if attested is not None else ATTESTATION_ONE.get(attestation.upper(), 0)
        packed = self._packed
        bucket = packed.get(index)
        if bucket is None:
            packed[index] = delta
            if index < high:  # a late call's new bucket: keep the buckets in order (rare)
                self._packed = dict(sorted(packed.items()))
            if index + c.window_buckets < self._prune_at:
                self._prune_at = index + c.window_buckets
        else:
            packed[index] = bucket + delta
        self._total += delta
        if index > high - c.span:
            self._recent += 1
        peak = self._peak
        if peak is not None:
            if index == high:
                # The only sliding hour through the newest bucket is the one ending there.
                if self._recent >= peak:
                    self._peak, self._peak_end = self._recent, index
            else:  # a late call inside the window: every run through its bucket may have grown
                self._peak = None
        hasher = self._hasher.copy()
        hasher.update(destination.encode("utf-8", "surrogatepass"))
        value, slot = int.from_bytes(hasher.digest(), "big"), math.floor(seconds / c.slot_s)
        seen = self.seen
        known = seen.get(value)
        if known is None and len(seen) < c.distinct_cap:  # a new destination (the common case, written out)
            seen[value] = slot
            members = self._slots.get(slot)
            if members is None:
                self._slots[slot] = [value]
                self._new_slot(slot)
            else:
                members.append(value)
        elif known is None or slot > known:
            self._remember(slot, value)
        self._latest = None
        self._changes += 1
        return True

    def _advance(self, index: int) -> None:
        """Move the high-water mark: prune what left the window, and take out of the newest hour the
        buckets it no longer covers (no bucket lies between the old mark and the new one)."""
        previous, span = self.high_water, self._c.span
        self.high_water = index
        if index >= self._prune_at:
            self._prune()
        if previous is None or index - previous >= span:
            self._recent = 0
        else:
            packed = self._packed
            for i in range(previous - span + 1, index - span + 1):
                bucket = packed.get(i)
                if bucket is not None:
                    self._recent -= bucket & MASK

    def _remember(self, slot: int, value: int) -> None:
        """Track a destination exactly while under the cap; past it, count it as new (upper bound)."""
        seen = self.seen
        known = seen.get(value)
        if known is None and len(seen) >= self._c.distinct_cap:
            count = self.overflow.get(slot)
            if count is None:
                self.overflow[slot] = 1
                self._new_slot(slot)
            else:
                self.overflow[slot] = count + 1
            self._overflow_total += 1
        elif known is None or slot > known:
            seen[value] = slot
            members = self._slots.get(slot)  # a destination that moves on stays listed in its old slot
            if members is None:
                self._slots[slot] = [value]
                self._new_slot(slot)
            else:
                members.append(value)

    def _new_slot(self, slot: int) -> None:
        heapq.heappush(self._slot_heap, slot)
        c = self._c
        expires = (slot + c.window_slots) * (c.slot_s // c.bucket_s)  # the first mark whose window lacks it
        if expires < self._prune_at:
            self._prune_at = expires

    def _prune(self) -> None:
        """Forget what fell out of the window behind the high-water mark: memory stays bounded."""
        assert self.high_water is not None
        c = self._c
        oldest = self.high_water - c.window_buckets
        packed = self._packed
        dropped = []
        for index in packed:  # in order: stop at the first bucket inside the window
            if index > oldest:
                break
            dropped.append(index)
        if dropped:
            total = self._total
            for index in dropped:
                total -= packed.pop(index)
            self._changes += (self._total - total) & MASK
            self._total = total
            if self._peak is not None and self._peak_end - c.span < oldest:
                self._peak = None  # the busiest hour lost calls: recompute it when next asked
        oldest_slot = self.high_water * c.bucket_s // c.slot_s - c.window_slots
        slot_heap = self._slot_heap
        if slot_heap and slot_heap[0] <= oldest_slot:
            seen, slots, overflow = self.seen, self._slots, self.overflow
            while slot_heap and slot_heap[0] <= oldest_slot:
                slot = heapq.heappop(slot_heap)
                for value in slots.pop(slot, ()):
                    if seen.get(value) == slot:  # else it was called again in a later slot
                        del seen[value]
                self._overflow_total -= overflow.pop(slot, 0)
        self._prune_at = min(next(iter(packed)) + c.window_buckets if packed else math.inf,
                             (slot_heap[0] + c.window_slots) * (c.slot_s // c.bucket_s) if slot_heap else math.inf)

    def totals(self, now: datetime) -> tuple[list[int], int]:
        """Counters summed over the 24 h ending with the bucket of `now`, and the busiest hour."""
        c = self._c
        now_index = math.floor(_epoch(now, "now") / c.bucket_s)
        first = now_index - c.window_buckets + 1
        per_bucket = [self._packed.get(i, 0) for i in range(first, now_index + 1)]
        return unpack(sum(per_bucket)), self._full_peak(per_bucket)

    def _full_peak(self, per_bucket: list[int]) -> int:
        """Most calls in any run of `burst_s` consecutive buckets (a sliding hour) in the window."""
        span = self._c.span
        calls = [b & MASK for b in per_bucket]
        running = sum(calls[:span])
        peak = running
        for i in range(span, len(calls)):
            running += calls[i] - calls[i - span]
            peak = max(peak, running)
        return peak

    def distinct_destinations(self, now: datetime) -> int:
        """Destinations last called in the window's hour slots, plus calls past the cap."""
        now_slot = math.floor(_epoch(now, "now") / self._c.slot_s)
        in_window = range(now_slot - self._c.window_slots + 1, now_slot + 1)
        tracked = sum(1 for slot in self.seen.values() if slot in in_window)
        return tracked + sum(n for slot, n in self.overflow.items() if slot in in_window)

    def _sparse_peak(self) -> tuple[int, int]:
        """The busiest sliding hour over the stored buckets (all inside the window after pruning) and
        the newest bucket ending such a run: the busiest hour always ends on a bucket with calls."""
        span = self._c.span
        items = sorted((index, counts & MASK) for index, counts in self._packed.items())
        peak = running = low = end = 0
        for index, calls in items:
            running += calls
            while items[low][0] <= index - span:
                running -= items[low][1]
                low += 1
            if running >= peak:
                peak, end = running, index
        return peak, end

    def _current_peak(self) -> int:
        if self._peak is None:
            self._peak, self._peak_end = self._sparse_peak()
        return self._peak

    def latest_value(self) -> float:
        """The score (only the number) at the newest call's bucket, from the running sums. Equal to
        `score_latest().score` (a test holds them equal); it also starts a new `ceiling`."""
        if self._latest is None:
            if self.high_water is None:
                self._latest = 0.0
            else:
                total = self._total
                points = _points_of(total, self._current_peak(), self._distinct_latest(), self._c)
                self._latest = _score(points)
                self._bound_from(points, total)
        return self._latest

    def ceiling(self) -> float | None:
        """An upper bound of `latest_value()` at the cost of a multiplication, or None when there is none
        (no score computed yet, or too many calls since the last): then compute the score.

        From the last score computed: each call added or dropped since moves each factor by at most a
        step that depends only on how few calls (answered, attested calls) the window can have held
        meanwhile, and a factor already at its maximum cannot grow (see `_bound_from`).
        """
        if self._changes > self._horizon:
            return None
        return self._ceiling + self._changes * self._slope

    def bound_below(self, limit: float) -> float | None:
        """An upper bound of `latest_value()` below `limit` if one is known without computing the score:
        `ceiling`, else the most that any calls can score while the window holds this few (under
        `RiskConfig`'s defaults, 59 calls can never reach 70); None otherwise."""
        if self._changes <= self._horizon:
            ceiling = self._ceiling + self._changes * self._slope
            if ceiling < limit:
                return ceiling
        calls, most = self._c.quiet(limit)
        return most if self._total & MASK <= calls else None

    def _bound_from(self, points: tuple[float, ...], total: int) -> None:
        """Start the bound behind `ceiling` from the points just computed, valid for `_horizon` changes.

        One call added or dropped changes each counter by at most one, and the call count by exactly
        one; over h such changes from n calls, the window holds at least n - h calls. Every ratio
        factor is scale(m) x ramp(x / m) (m: calls, answered or attested calls; x counts or weighs
        them, at most one step w per call): x / m moves by at most w / m_low per change, the scale by
        1 / min_calls while m_low is under min_calls. Volume moves by 1 / ramp width per call added,
        burst too (a call adds at most one to the busiest hour; dropping calls never adds). The
        distinct ratio min(1, distinct / calls) moves by at most 1 / calls_low (a call adds at most one
        destination; slots that expire only lower it). Each step is then scaled by the factor's points.
        """
        c = self._c
        calls, answered = total & MASK, (total >> SHIFT_ANSWERED) & MASK
        attested = ((total >> SHIFT_A) & MASK) + ((total >> SHIFT_B) & MASK) + (total >> SHIFT_C)
        horizon = calls // 4 or 1
        calls_low, answered_low, attested_low = calls - horizon, answered - horizon, attested - horizon
        few_calls = calls_low < c.min_calls
        per_call = 1.0 / calls_low if calls_low > 1 else 1.0
        p0, p1, p2, p3, p4, p5, p6 = points
        cap0, cap1, cap2, cap3, cap4, cap5, cap6 = c.caps
        step0, step1, step2, step3, step4, step5, step6 = c.steps
        scale2, scale3, scale4, scale5, scale6 = c.scales
        slope = 0.0
        if p0 < cap0:  # a factor at its maximum cannot grow
            slope += step0
        if p1 < cap1:
            slope += step1
        if p2 < cap2:
            slope += (scale2 if few_calls else 0.0) + per_call * step2
        if p3 < cap3:
            slope += (scale3 if answered_low < c.min_answered else 0.0) \
                + (1.0 / answered_low if answered_low > 1 else 1.0) * step3
        if p4 < cap4:
            slope += (scale4 if few_calls else 0.0) + per_call * step4
        if p5 < cap5:
            slope += (scale5 if attested_low < c.min_calls else 0.0) \
                + (1.0 / attested_low if attested_low > 1 else 1.0) * step5
        if p6 < cap6:
            slope += (scale6 if few_calls else 0.0) + per_call * step6
        self._ceiling = max(0.0, sum(points)) + BOUND_SLACK
        self._slope = slope
        self._changes = 0
        self._horizon = horizon if math.isfinite(slope) else -1

    def _distinct_latest(self) -> int:
        """Distinct destinations in the window of the newest bucket: after pruning every stored slot is
        inside it, so the count is the tracked plus the overflow; a late call may have left an entry of
        the slot just outside (kept, as it holds a place under the cap), and then the slots are read."""
        assert self.high_water is not None
        c = self._c
        oldest_slot = self.high_water * c.bucket_s // c.slot_s - c.window_slots
        if self._slot_heap and self._slot_heap[0] <= oldest_slot:
            latest = self.latest_time()
            assert latest is not None
            return self.distinct_destinations(latest)
        return len(self.seen) + self._overflow_total

    def calls_24h(self) -> int:
        return self._total & MASK

    @property
    def buckets(self) -> dict[int, list[int]]:
        """Bucket index -> its COUNTERS counters (calls, answered, short, 603, 607, 608, A, B, C)."""
        return {index: unpack(packed) for index, packed in self._packed.items()}

    def score_latest(self) -> RiskScore:
        """`score` at the newest call's bucket, from running sums, with its breakdown.

        Equal to `score(now)` for any `now` in the high-water bucket (a test holds them equal). After
        pruning, every stored destination slot is inside the window (see `_distinct_latest`).
        """
        if self.high_water is None:
            return score_totals([0] * COUNTERS, 0, 0, self.config)
        distinct = self._distinct_latest()
        return score_totals(unpack(self._total), self._current_peak(), distinct, self.config)

    def latest_inputs(self) -> tuple[int, int, int]:
        """What `score_latest` scores, kept for later (`score_inputs`): the packed counters, the busiest
        hour and the distinct destinations."""
        if self.high_water is None:
            return 0, 0, 0
        return self._total, self._current_peak(), self._distinct_latest()

    def latest_time(self) -> datetime | None:
        """The start of the newest bucket: the event time `score_latest` scores at."""
        if self.high_water is None:
            return None
        return datetime.fromtimestamp(self.high_water * self._c.bucket_s, UTC)

    def score(self, now: datetime) -> RiskScore:
        """The risk at `now` (an event time: the caller's clock, never the wall clock)."""
        totals, peak = self.totals(now)
        return score_totals(totals, peak, self.distinct_destinations(now), self.config)

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-ready form: bucket rows `[index, *counters]`, destinations `[slot, *hashes]`."""
        seen = self.seen
        # `_slots` may still list a destination under a slot it moved on from: `seen` has the truth.
        destinations = []
        for slot in sorted(self._slots):
            values = [value for value in self._slots[slot] if seen.get(value) == slot]
            if values:
                destinations.append([slot, *values])
        rows, buckets = self._rows, []
        for index, packed in self._packed.items():  # in index order (see `_packed`)
            cached = rows.get(index)
            if cached is None or cached[0] != packed:
                cached = rows[index] = (packed, [index, *unpack(packed)])
            buckets.append(cached[1])
        if len(rows) > len(buckets) + 16:  # buckets pruned since: forget their rows
            self._rows = {row[0]: (self._packed[row[0]], row) for row in buckets}
        return {
            "v": STATE_VERSION,
            "hw": self.high_water,
            "late": self.late,
            "b": buckets,
            "d": destinations,
            "o": [[slot, n] for slot, n in sorted(self.overflow.items())],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], config: RiskConfig | None = None,
                  hash_key: bytes = b"") -> RiskState:
        """Inverse of to_dict; a state written by another version is refused rather than misread."""
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"risk state: unsupported version {data.get('v')!r}")
        state = cls(config, hash_key)
        state.high_water = None if data.get("hw") is None else int(data["hw"])
        state.late = int(data.get("late", 0))
        for row in data.get("b", []):
            if len(row) != COUNTERS + 1:
                raise ValueError("risk state: bucket row of the wrong length")
            state._packed[int(row[0])] = pack([int(v) for v in row[1:]])
        for slot, *values in data.get("d", []):
            state.seen.update((int(v), int(slot)) for v in values)
        for value, slot in state.seen.items():
            state._slots.setdefault(slot, []).append(value)
        state.overflow = {int(slot): int(n) for slot, n in data.get("o", [])}
        for slot in {*state._slots, *state.overflow}:
            state._new_slot(slot)
        for index in state._packed:
            state._prune_at = min(state._prune_at, index + state._c.window_buckets)
        state._packed = dict(sorted(state._packed.items()))
        state._total = sum(state._packed.values())
        state._overflow_total = sum(state.overflow.values())
        state._peak = None
        if state.high_water is not None:
            span = state._c.span
            state._recent = sum(state._packed.get(i, 0) & MASK for i in range(state.high_water - span + 1,
                                                                                state.high_water + 1))
        return state


def score_inputs(inputs: tuple[int, int, int], config: RiskConfig) -> RiskScore:
    """`score_latest` of the state `RiskState.latest_inputs` was taken from, when it was taken."""
    total, peak_hour, distinct = inputs
    return score_totals(unpack(total), peak_hour, distinct, config)


def score_totals(totals: list[int], peak_hour: int, distinct: int, config: RiskConfig) -> RiskScore:
    """Turn window totals into factors (0..1), then into weighted points that add up to the score."""
    points = _points(totals, peak_hour, distinct, config)
    return RiskScore(
        score=_score(points),
        factors={name: round(value, 2) for name, value in zip(FACTORS, points, strict=True)},
        inputs={name: round(value, 4) for name, value in _measures(totals, peak_hour, distinct, config).items()},
    )


def _score(points: tuple[float, ...]) -> float:
    """The score from the points: one arithmetic for `score_totals` and `latest_value`."""
    return min(100.0, max(0.0, round(sum(points), 1)))


@dataclass(frozen=True)
class _Constants:
    """A config's numbers in the form the hot paths use them, computed once per config."""

    weights: tuple[float, ...]  # 100 x weight, in FACTORS order
    weight_sum: float
    min_calls: int
    min_answered: int
    ramps: tuple[tuple[float, float], ...]  # (low, high - low): volume, burst, answer, short, rejection, distinct
    rejection: tuple[tuple[int, float], ...]  # (counter, weight)
    attestation: tuple[tuple[int, float], ...]
    bucket_s: int
    window_buckets: int
    span: int  # buckets in a sliding hour (burst_s)
    slot_s: int
    window_slots: int
    short_call_s: float
    distinct_cap: int
    full: tuple[float, ...]  # each factor's points at its maximum (1), in FACTORS order
    caps: tuple[float, ...]  # points at or above which a factor cannot grow (inf: no such level)
    # How many points one call moves each factor (see `_bound_from`): `steps` per unit of 1 / (calls,
    # answered or attested calls), `scales` (ratio factors) while those are under their minimum.
    steps: tuple[float, ...]
    scales: tuple[float, ...]  # answer rate, short calls, rejections, attestation, distinct destinations
    attestation_top: float  # the largest attestation factor (1 with the default weights)
    flat: tuple[float, ...]  # what `_points_of` reads, in its order
    _quiet: list[float] = field(default_factory=list, compare=False)  # see `quiet`

    def quiet(self, limit: float) -> tuple[float, float]:
        """(n, s): whatever n or fewer calls in the window are like, their score is at most s < `limit`
        (n = -1: no such n; n = inf: any number of calls). Each factor is bounded from the call count
        alone: volume is a function of it, the busiest hour holds at most as many calls, and every
        ratio factor is at most its scale (answered and attested calls are at most the calls)."""
        table = self._quiet
        if not table:
            table.extend(self._quiet_table())
        n = bisect.bisect_left(table, limit) - 1  # table[i]: the most i calls or fewer can score
        if n < 0:
            return -1, math.inf
        return (math.inf if n == len(table) - 1 else n), table[n]

    def _quiet_table(self) -> list[float]:
        (v_lo, v_span), (b_lo, b_span) = self.ramps[0], self.ramps[1]
        saturated = max(v_lo, v_lo + v_span, b_lo, b_lo + b_span, self.min_calls, self.min_answered)
        if not v_span or not b_span or not math.isfinite(saturated) or saturated > 1_000_000:
            return [math.inf]
        table, most = [], 0.0
        for n in range(max(0, math.ceil(saturated)) + 2):  # past the last, every factor's bound is constant
            scale = min(1.0, n / self.min_calls)
            raw = (min(1.0, max(0.0, (n - v_lo) / v_span)), min(1.0, max(0.0, (n - b_lo) / b_span)),
                   scale, min(1.0, n / self.min_answered), scale, scale * self.attestation_top, scale)
            most = max(most, sum(f * r for f, r in zip(self.full, raw, strict=True)) + BOUND_SLACK)
            table.append(most)
        return table

    @classmethod
    def of(cls, config: RiskConfig) -> _Constants:
        daily, hourly = config.daily_calls_guidance, config.hourly_calls_guidance
        bounds = ((daily * config.volume_ramp[0], daily * config.volume_ramp[1]),
                  (hourly * config.burst_ramp[0], hourly * config.burst_ramp[1]),
                  (-config.answer_rate_ok, -config.answer_rate_bad),
                  config.short_share_ramp, config.rejection_share_ramp, config.distinct_ratio_ramp)
        ramps = tuple((low, high - low) for low, high in bounds)
        weights = tuple(100.0 * config.weights.get(name, 0.0) for name in FACTORS)
        weight_sum = sum(config.weights.values())
        rejection = tuple((i, config.rejection_weights.get(code, 0.0)) for code, i in REJECTION_INDEX.items())
        attestation = tuple((i, config.attestation_weights.get(letter, 0.0)) for letter, i in ATTESTATION_INDEX.items())
        # A weighted count moves by one weight per call: its ratio moves by at most the spread of the
        # weights (with 0, for calls that do not count) per call in the denominator.
        rejection_spread = max(0.0, *(w for _, w in rejection)) - min(0.0, *(w for _, w in rejection))
        attestation_spread = max(0.0, *(w for _, w in attestation)) - min(0.0, *(w for _, w in attestation))
        attestation_top = max(abs(w) for _, w in attestation)  # the attestation factor is not clamped to 1

        def slope(span: float) -> float:
            return 1.0 / abs(span) if span else math.inf

        full = tuple(w * 1.0 / weight_sum for w in weights)
        caps = (*full[:5], full[5] if all(0.0 <= w <= 1.0 for _, w in attestation) else math.inf, full[6])
        steps = tuple(f * step for f, step in zip(full, (
            slope(ramps[0][1]), slope(ramps[1][1]), slope(ramps[2][1]), slope(ramps[3][1]),
            rejection_spread * slope(ramps[4][1]), attestation_spread, slope(ramps[5][1])), strict=True))
        scales = (full[2] / config.min_calls, full[3] / config.min_answered, full[4] / config.min_calls,
                  full[5] * attestation_top / config.min_calls, full[6] / config.min_calls)
        flat = (*(x for ramp in ramps for x in ramp), config.min_calls, config.min_answered,
                *(w for _, w in rejection), *(w for _, w in attestation), *weights, weight_sum)
        return cls(
            weights=weights, weight_sum=weight_sum, min_calls=config.min_calls, min_answered=config.min_answered,
            ramps=ramps, rejection=rejection, attestation=attestation,
            bucket_s=config.bucket_s, window_buckets=config.window_s // config.bucket_s,
            span=config.burst_s // config.bucket_s, slot_s=config.distinct_slot_s,
            window_slots=config.window_s // config.distinct_slot_s, short_call_s=config.short_call_s,
            distinct_cap=config.distinct_cap, full=full, caps=caps, steps=steps, scales=scales,
            attestation_top=attestation_top, flat=flat,
        )


_CONSTANTS: dict[int, tuple[RiskConfig, _Constants]] = {}


def _constants(config: RiskConfig) -> _Constants:
    cached = _CONSTANTS.get(id(config))
    if cached is None or cached[0] is not config:
        cached = _CONSTANTS[id(config)] = (config, _Constants.of(config))
    return cached[1]


def _points(totals: list[int], peak_hour: int, distinct: int, config: RiskConfig) -> tuple[float, ...]:
    return _points_of(_pack(totals), peak_hour, distinct, _constants(config))


def _points_of(total: int, peak_hour: int, distinct: int, c: _Constants) -> tuple[float, ...]:
    """Each factor in 0..1 turned into its weighted points, in FACTORS order; they add up to the score.
    `total`: the window's counters, packed.

    Ratios over few calls are scaled down: 3 unanswered calls prove nothing. Every factor is a ramp
    `min(1, max(0, (value - low) / (high - low)))`, written out here as `x if 0 < x < 1 else (1 if x >= 1
    else 0)` (the same float for every x, NaN included) because this runs on most calls.
    """
    (v_lo, v_span, b_lo, b_span, a_lo, a_span, s_lo, s_span, r_lo, r_span, d_lo, d_span, min_calls, min_answered,
     w603, w607, w608, w_a, w_b, w_c, w0, w1, w2, w3, w4, w5, w6, weight_sum) = c.flat
    calls = total & MASK
    answered = (total >> SHIFT_ANSWERED) & MASK
    short = (total >> SHIFT_SHORT) & MASK
    attested_a, attested_b, attested_c = (total >> SHIFT_A) & MASK, (total >> SHIFT_B) & MASK, total >> SHIFT_C
    attested = attested_a + attested_b + attested_c
    by_calls = calls / min_calls
    if by_calls >= 1.0:
        by_calls = 1.0
    by_answered = answered / min_answered
    if by_answered >= 1.0:
        by_answered = 1.0
    by_attested = attested / min_calls
    if by_attested >= 1.0:
        by_attested = 1.0
    if calls:
        x = (-(answered / calls) - a_lo) / a_span
        answer_risk = x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0)
    else:
        answer_risk = 0.0
    short_share = short / answered if answered else 0.0
    rejected = 0
    rejected += w603 * (total >> SHIFT_603 & MASK)
    rejected += w607 * (total >> SHIFT_607 & MASK)
    rejected += w608 * (total >> SHIFT_608 & MASK)
    attestation = 0
    attestation += w_a * attested_a
    attestation += w_b * attested_b
    attestation += w_c * attested_c
    rejection_share = rejected / calls if calls else 0.0
    if calls:
        distinct_ratio = distinct / calls
        if distinct_ratio >= 1.0:
            distinct_ratio = 1.0
    else:
        distinct_ratio = 0.0
    x = (calls - v_lo) / v_span
    raw0 = x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0)
    x = (peak_hour - b_lo) / b_span
    raw1 = x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0)
    x = (short_share - s_lo) / s_span
    raw3 = by_answered * (x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    x = (rejection_share - r_lo) / r_span
    raw4 = by_calls * (x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    x = (distinct_ratio - d_lo) / d_span
    raw6 = by_calls * (x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    return (w0 * raw0 / weight_sum, w1 * raw1 / weight_sum, w2 * (by_calls * answer_risk) / weight_sum,
            w3 * raw3 / weight_sum, w4 * raw4 / weight_sum,
            w5 * (by_attested * (attestation / attested if attested else 0.0)) / weight_sum, w6 * raw6 / weight_sum)


def _measures(totals: list[int], peak_hour: int, distinct: int, config: RiskConfig) -> dict[str, float]:
    calls, answered = totals[CALLS], totals[ANSWERED]
    attested = totals[ATT_A] + totals[ATT_B] + totals[ATT_C]
    rejected = sum(config.rejection_weights.get(code, 0.0) * totals[i] for code, i in REJECTION_INDEX.items())
    attestation = sum(
        config.attestation_weights.get(letter, 0.0) * totals[i] for letter, i in ATTESTATION_INDEX.items()
    )
    return {
        "calls_24h": float(calls),
        "peak_hour_calls": float(peak_hour),
        "answered_24h": float(answered),
        "answer_rate": answered / calls if calls else 0.0,
        "short_share": totals[SHORT] / answered if answered else 0.0,
        "rejection_share": rejected / calls if calls else 0.0,
        "attestation_risk": attestation / attested if attested else 0.0,
        "attested_24h": float(attested),
        "distinct_ratio": min(1.0, distinct / calls) if calls else 0.0,
    }
