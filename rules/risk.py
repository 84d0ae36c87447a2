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

import hashlib
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
    warning_at: float = 70.0  # rule spam.label_risk: alert, warning
    critical_at: float = 85.0  # rule spam.label_risk: alert, critical
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


def destination_hash(destination_key: str) -> int:
    """32-bit hash of an (already hashed) destination key: stable across processes, unlike hash()."""
    return int.from_bytes(hashlib.blake2b(destination_key.encode(), digest_size=4).digest(), "big")


def _epoch(moment: datetime, name: str) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware")
    return moment.timestamp()


class RiskState:
    """One caller ID's recent traffic, in bounded memory; serialisable for a changelog table.

    Scores are meant for `now` at or after the newest call added (the stream's event time).
    """

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or DEFAULT_CONFIG
        self.buckets: dict[int, list[int]] = {}  # bucket index -> COUNTERS counters
        self.seen: dict[int, int] = {}  # destination hash -> hour slot it was last called in
        self.overflow: dict[int, int] = {}  # hour slot -> calls to untracked destinations (cap reached)
        self.high_water: int | None = None  # newest bucket index seen
        self.late = 0  # records dropped because older than the window
        # Running sums for `score_latest`: the window behind the high-water mark, kept as calls arrive.
        self._totals = [0] * COUNTERS
        self._peak_cache: int | None = 0

    @property
    def _window_buckets(self) -> int:
        return self.config.window_s // self.config.bucket_s

    @property
    def _window_slots(self) -> int:
        return self.config.window_s // self.config.distinct_slot_s

    def add(
        self,
        started_at: datetime,
        answered: bool,
        duration_s: float,
        sip_code: int | None,
        attestation: str | None,
        destination_key: str,
    ) -> bool:
        """Count one outbound call. Returns False (and counts it in `late`) when it is older than
        the window behind the newest call seen: lateness is decided here, never silently merged."""
        seconds = _epoch(started_at, "started_at")
        index = math.floor(seconds / self.config.bucket_s)
        if self.high_water is not None and index <= self.high_water - self._window_buckets:
            self.late += 1
            return False
        if self.high_water is None or index > self.high_water:
            self.high_water = index
            self._prune()
        self._count(index, answered, duration_s, sip_code, attestation)
        self._remember(math.floor(seconds / self.config.distinct_slot_s), destination_hash(destination_key))
        return True

    def _count(
        self, index: int, answered: bool, duration_s: float, sip_code: int | None, attestation: str | None
    ) -> None:
        bucket = self.buckets.setdefault(index, [0] * COUNTERS)
        touched = [CALLS]
        if answered:
            touched.append(ANSWERED)
            if duration_s < self.config.short_call_s:
                touched.append(SHORT)
        if sip_code in REJECTION_INDEX:
            touched.append(REJECTION_INDEX[sip_code])
        if attestation and attestation.upper() in ATTESTATION_INDEX:
            touched.append(ATTESTATION_INDEX[attestation.upper()])
        for counter in touched:
            bucket[counter] += 1
            self._totals[counter] += 1
        if self._peak_cache is not None:
            self._peak_cache = max(self._peak_cache, self._busiest_run_through(index))

    def _remember(self, slot: int, value: int) -> None:
        """Track a destination exactly while under the cap; past it, count it as new (upper bound)."""
        if value in self.seen:
            self.seen[value] = max(self.seen[value], slot)
        elif len(self.seen) < self.config.distinct_cap:
            self.seen[value] = slot
        else:
            self.overflow[slot] = self.overflow.get(slot, 0) + 1

    def _prune(self) -> None:
        """Forget what fell out of the window behind the high-water mark: memory stays bounded."""
        assert self.high_water is not None
        oldest = self.high_water - self._window_buckets
        for index in [i for i in self.buckets if i <= oldest]:
            for counter, value in enumerate(self.buckets.pop(index)):
                self._totals[counter] -= value
        self._peak_cache = None  # the window moved: recompute the busiest hour when next asked
        oldest_slot = self.high_water * self.config.bucket_s // self.config.distinct_slot_s - self._window_slots
        for value in [v for v, slot in self.seen.items() if slot <= oldest_slot]:
            del self.seen[value]
        for slot in [s for s in self.overflow if s <= oldest_slot]:
            del self.overflow[slot]

    def totals(self, now: datetime) -> tuple[list[int], int]:
        """Counters summed over the 24 h ending with the bucket of `now`, and the busiest hour."""
        now_index = math.floor(_epoch(now, "now") / self.config.bucket_s)
        first = now_index - self._window_buckets + 1
        per_bucket = [self.buckets.get(i) for i in range(first, now_index + 1)]
        totals = [0] * COUNTERS
        for bucket in per_bucket:
            if bucket:
                totals = [a + b for a, b in zip(totals, bucket, strict=True)]
        return totals, self._peak(per_bucket)

    def _peak(self, per_bucket: list[list[int] | None]) -> int:
        """Most calls in any run of `burst_s` consecutive buckets (a sliding hour) in the window."""
        span = self.config.burst_s // self.config.bucket_s
        calls = [b[CALLS] if b else 0 for b in per_bucket]
        running = sum(calls[:span])
        peak = running
        for i in range(span, len(calls)):
            running += calls[i] - calls[i - span]
            peak = max(peak, running)
        return peak

    def distinct_destinations(self, now: datetime) -> int:
        """Destinations last called in the window's hour slots, plus calls past the cap."""
        now_slot = math.floor(_epoch(now, "now") / self.config.distinct_slot_s)
        in_window = range(now_slot - self._window_slots + 1, now_slot + 1)
        tracked = sum(1 for slot in self.seen.values() if slot in in_window)
        return tracked + sum(n for slot, n in self.overflow.items() if slot in in_window)

    def _busiest_run_through(self, index: int) -> int:
        """The most calls in a sliding hour that contains bucket `index`, within the window."""
        assert self.high_water is not None
        span = self.config.burst_s // self.config.bucket_s
        first = self.high_water - self._window_buckets + 1
        best = 0
        for start in range(max(first, index - span + 1), min(index, self.high_water - span + 1) + 1):
            best = max(best, sum(self.buckets[i][CALLS] for i in range(start, start + span) if i in self.buckets))
        return best

    def _sparse_peak(self) -> int:
        """`_peak` over the stored buckets only (all inside the window after pruning): the busiest
        sliding hour always ends on a bucket that has calls, so only those ends need checking."""
        span = self.config.burst_s // self.config.bucket_s
        items = sorted((index, counts[CALLS]) for index, counts in self.buckets.items())
        peak = running = low = 0
        for index, calls in items:
            running += calls
            while items[low][0] <= index - span:
                running -= items[low][1]
                low += 1
            peak = max(peak, running)
        return peak

    def score_latest(self) -> RiskScore:
        """`score` at the newest call's bucket, from running sums: what the engine asks after each call.

        Equal to `score(now)` for any `now` in the high-water bucket (a test holds them equal), at a
        fraction of the cost, because a busy CLI is scored on every call.
        """
        if self.high_water is None:
            return score_totals([0] * COUNTERS, 0, 0, self.config)
        if self._peak_cache is None:
            self._peak_cache = self._sparse_peak()
        latest = self.latest_time()
        assert latest is not None
        return score_totals(list(self._totals), self._peak_cache, self.distinct_destinations(latest), self.config)

    def latest_time(self) -> datetime | None:
        """The start of the newest bucket: the event time `score_latest` scores at."""
        if self.high_water is None:
            return None
        return datetime.fromtimestamp(self.high_water * self.config.bucket_s, UTC)

    def score(self, now: datetime) -> RiskScore:
        """The risk at `now` (an event time: the caller's clock, never the wall clock)."""
        totals, peak = self.totals(now)
        return score_totals(totals, peak, self.distinct_destinations(now), self.config)

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-ready form: bucket rows `[index, *counters]`, destinations `[slot, *hashes]`."""
        by_slot: dict[int, list[int]] = {}
        for value, slot in self.seen.items():
            by_slot.setdefault(slot, []).append(value)
        return {
            "v": STATE_VERSION,
            "hw": self.high_water,
            "late": self.late,
            "b": [[index, *counts] for index, counts in sorted(self.buckets.items())],
            "d": [[slot, *sorted(values)] for slot, values in sorted(by_slot.items())],
            "o": [[slot, n] for slot, n in sorted(self.overflow.items())],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], config: RiskConfig | None = None) -> RiskState:
        """Inverse of to_dict; a state written by another version is refused rather than misread."""
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"risk state: unsupported version {data.get('v')!r}")
        state = cls(config)
        state.high_water = None if data.get("hw") is None else int(data["hw"])
        state.late = int(data.get("late", 0))
        for row in data.get("b", []):
            if len(row) != COUNTERS + 1:
                raise ValueError("risk state: bucket row of the wrong length")
            state.buckets[int(row[0])] = [int(v) for v in row[1:]]
        for slot, *values in data.get("d", []):
            state.seen.update((int(v), int(slot)) for v in values)
        state.overflow = {int(slot): int(n) for slot, n in data.get("o", [])}
        for counts in state.buckets.values():
            state._totals = [a + b for a, b in zip(state._totals, counts, strict=True)]
        state._peak_cache = None
        return state


def score_totals(totals: list[int], peak_hour: int, distinct: int, config: RiskConfig) -> RiskScore:
    """Turn window totals into factors (0..1), then into weighted points that add up to the score."""
    measures = _measures(totals, peak_hour, distinct, config)
    raw = _factors(measures, config)
    weight_sum = sum(config.weights.values())
    points = {name: 100.0 * config.weights.get(name, 0.0) * raw[name] / weight_sum for name in FACTORS}
    total = round(sum(points.values()), 1)
    return RiskScore(
        score=min(100.0, max(0.0, total)),
        factors={name: round(value, 2) for name, value in points.items()},
        inputs={name: round(value, 4) for name, value in measures.items()},
    )


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


def _factors(m: dict[str, float], config: RiskConfig) -> dict[str, float]:
    """Each factor in 0..1. Ratios over few calls are scaled down: 3 unanswered calls prove nothing."""
    by_calls = min(1.0, m["calls_24h"] / config.min_calls)
    by_answered = min(1.0, m["answered_24h"] / config.min_answered)
    by_attested = min(1.0, m["attested_24h"] / config.min_calls)
    daily, hourly = config.daily_calls_guidance, config.hourly_calls_guidance
    answer_risk = 0.0
    if m["calls_24h"]:
        answer_risk = ramp(-m["answer_rate"], -config.answer_rate_ok, -config.answer_rate_bad)
    return {
        "volume": ramp(m["calls_24h"], *(daily * r for r in config.volume_ramp)),
        "burst": ramp(m["peak_hour_calls"], *(hourly * r for r in config.burst_ramp)),
        "answer_rate": by_calls * answer_risk,
        "short_calls": by_answered * ramp(m["short_share"], *config.short_share_ramp),
        "rejections": by_calls * ramp(m["rejection_share"], *config.rejection_share_ramp),
        "attestation": by_attested * m["attestation_risk"],
        "distinct_destinations": by_calls * ramp(m["distinct_ratio"], *config.distinct_ratio_ramp),
    }
