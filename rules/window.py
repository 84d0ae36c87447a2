"""Calendar-day windows in a rule's zone, cached: the engine asks for one on every call of every rule.

A window is a calendar day in a zone (`local_day`) or in UTC (`utc_day`), DST-aware: its end is the
next midnight of that zone, in UTC. Converting a time zone costs more than the rest of a simple rule,
so the windows of each zone are kept in a small cache keyed by day, and a call falls in the cached
window of its zone by two comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from rules.cdr import zone

CACHED_DAYS = 16  # per zone: late and out-of-order records hit a few recent days


@dataclass(frozen=True, slots=True)
class Window:
    key: str  # e.g. "2026-03-29" (a calendar date in the rule's zone)
    end: datetime  # the next midnight of that zone, in UTC
    start_ts: float
    end_ts: float
    ordinal: int = 0  # the date's proleptic ordinal: consecutive days differ by one (N-day windows)


class Windows:
    """The day windows of one zone, computed once per day."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._last: Window | None = None
        self._days: dict[str, Window] = {}

    def of(self, moment: datetime) -> Window:
        return self.at(moment.timestamp(), moment)

    def at(self, ts: float, moment: datetime) -> Window:
        """The window of `moment`, whose epoch seconds `ts` the caller already has."""
        last = self._last
        if last is not None and last.start_ts <= ts < last.end_ts:
            return last
        day = moment.astimezone(self.tz).date()
        window = self._days.get(day.isoformat())
        if window is None:
            start = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz).astimezone(UTC)
            window = Window(day.isoformat(), end, start.timestamp(), end.timestamp(), day.toordinal())
            if len(self._days) >= CACHED_DAYS:
                self._days.clear()
            self._days[window.key] = window
        self._last = window
        return window


_ZONES: dict[str, Windows] = {}


def windows_for(window_kind: str, timezone: str) -> Windows:
    """The shared window cache of a rule's window kind and zone (UTC for utc_day)."""
    name = "UTC" if window_kind == "utc_day" else timezone
    cache = _ZONES.get(name)
    if cache is None:
        cache = _ZONES[name] = Windows(UTC if name == "UTC" else zone(name))
    return cache


def window_of(window_kind: str, timezone: str, moment: datetime) -> Window:
    """The calendar day of `moment` in the zone (UTC for utc_day), DST-aware."""
    return windows_for(window_kind, timezone).of(moment)
