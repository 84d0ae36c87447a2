"""Permitted calling hours: periods of the called party's local day, on some weekdays, not on holidays.

Calling-hours rules (France's D.223-9, the US TCPA) share this: the pack row's `params` may change the
periods and weekdays, the rule's code gives the public holidays and which zones a number may be in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any


@dataclass(frozen=True)
class Hours:
    """When a rule lets a call be made: periods of the local day (both ends included), on weekdays
    (Monday = 0) that are not public holidays when `holidays` is set."""

    periods: tuple[tuple[time, time], ...]
    weekdays: frozenset[int] = frozenset(range(7))
    holidays: Callable[[int], frozenset[date]] | None = None  # a year's public holidays

    def permits(self, local: datetime) -> bool:
        if local.weekday() not in self.weekdays:
            return False
        if self.holidays is not None and local.date() in self.holidays(local.year):
            return False
        moment = local.time()
        return any(start <= moment <= end for start, end in self.periods)


@dataclass(frozen=True)
class HoursParams:
    """A pack row's `params` parser for `periods: [[HH:MM, HH:MM], ...]` and `weekdays: [0..6]` (Monday is
    0), with the rule's defaults and holidays (a class, not a closure: engines are pickled to replay's
    worker processes)."""

    default_periods: tuple[tuple[str, str], ...]
    default_weekdays: tuple[int, ...]
    holidays: Callable[[int], frozenset[date]] | None = None

    def __call__(self, params: Mapping[str, Any]) -> Hours:
        unknown = set(params) - {"periods", "weekdays"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: periods, weekdays")
        periods = []
        for pair in params.get("periods", self.default_periods):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"periods: expected pairs [HH:MM, HH:MM], got {pair!r}")
            start, end = (_clock(value) for value in pair)
            if end < start:
                raise ValueError(f"periods: {pair!r} ends before it starts")
            periods.append((start, end))
        weekdays = list(params.get("weekdays", self.default_weekdays))
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays):
            raise ValueError(f"weekdays: expected a list of 0 (Monday) to 6 (Sunday), got {weekdays!r}")
        return Hours(tuple(periods), frozenset(weekdays), self.holidays)


def hours_params(default_periods: list[list[str]], default_weekdays: list[int],
                 holidays: Callable[[int], frozenset[date]] | None = None) -> HoursParams:
    return HoursParams(tuple((start, end) for start, end in default_periods), tuple(default_weekdays), holidays)


def _clock(value: Any) -> time:
    text = str(value)
    try:
        return time.fromisoformat(text if len(text) > 2 else f"{text}:00")
    except ValueError as exc:
        raise ValueError(f"periods: {value!r} is not a time of day HH:MM") from exc
