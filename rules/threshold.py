"""The `threshold` rule kind declared in a pack file: a measure of a key's calls over a window, compared
with levels, as one row of OpenSIPS fraud_detection's table or one CGRateS StatS/ThresholdS profile.

A pack row with `kind: threshold` and a `measure:` is a whole rule: no code. This module reads such a row
(`parse`, every field checked, errors naming the field), says it in one sentence (`explain`), and is its
check (`measure`): it filters the call (`filter`, `active`), counts it in the key's `Tally`
(rules/tally.py) and reports the measure as a `Finding` carrying a `Reading`. The engine applies the
emission policy: on a calendar window (`local_day`, `utc_day`, `days: N`) an alert once per window and a
block until the window ends, as `fr.daily_limit` always did (it is now a row of this kind plus a small check
that says which calls count); on a `sliding` window, hysteresis: a level fires, and its alert resolves (its
block is lifted) once the measure has been back past `clear_at` for `clear_after`, a block lasts `for` at
most, and `min_sleep` spaces two firings. All of it reads event time only, so replay equals the stream.

Keys: `cli` (the caller ID's own state), `cli+destination_country` (the same state, one tally per country),
`tenant` and `campaign` (a keyed state, judged on the partition that owns it, as fr.telemarketing_frequency's
consumers are). Destinations are only ever held as keyed hashes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any, NamedTuple

from rules.cdr import CdrError, zone
from rules.numbers import strip_separators
from rules.registry import Finding, RuleSpec, registry
from rules.tally import Tally
from rules.window import Window

if TYPE_CHECKING:
    from rules.context import Call
    from rules.pack import Rule, Threshold
    from rules.state import SubjectState

MEASURES = ("calls", "answered", "short_calls", "rejections", "distinct_destinations", "answer_rate",
            "avg_talk_s", "sequential_same_destination")
RATIOS = frozenset({"answer_rate", "avg_talk_s"})
SHARES = frozenset({"answered", "short_calls", "rejections"})  # measures that may be read as a percentage
PER_ANSWERED = frozenset({"short_calls", "avg_talk_s"})  # their calls (and min_calls) are answered calls
KEYS = ("cli", "cli+destination_country", "tenant", "campaign")
DEFAULT_CODES = (603, 607, 608)  # SIP Decline, Rejected, Unwanted (RFC 3261, RFC 8197, RFC 8688)
DEFAULT_SHORT_S = 6.0
BUCKETS = 60  # a sliding window is this many buckets (fewer when it is under 60 s)
FILTERS = ("direction", "destination_country", "caller_country", "tenant", "campaign", "purpose")
# The pack fields this kind adds to a rule row (rules/pack.py accepts them on threshold rows).
FIELDS = frozenset({"measure", "key", "direction", "min_calls", "share", "short_under", "codes", "hysteresis",
                    "active", "filter", "forecast", "forecast_over"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Active:
    """When a rule counts: some weekdays, a time-of-day period (end excluded; one that ends before it starts
    runs past midnight), in a named zone. Written `Mon-Fri 08:00-20:00 Europe/Paris`."""

    text: str
    weekdays: frozenset[int]
    start: time
    end: time | None  # None: until midnight (24:00)
    tz: tzinfo

    def permits(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        clock = local.time().replace(tzinfo=None)
        if self.end is None or self.start < self.end:
            inside = self.start <= clock and (self.end is None or clock < self.end)
            return inside and local.weekday() in self.weekdays
        if clock >= self.start:  # the evening part, on its own day
            return local.weekday() in self.weekdays
        return clock < self.end and (local.weekday() - 1) % 7 in self.weekdays  # after midnight: the day before's


@dataclass(frozen=True)
class Spec:
    """A threshold row as the check reads it (`Rule.config`)."""

    measure: str
    key: str = "cli"
    sliding: bool = False
    seconds: float = 86400.0  # the window's length (a calendar window: N days)
    width: float = 1.0  # a sliding window's bucket, in seconds
    span: int = 1  # buckets in the window (a calendar window: N days)
    direction: str = "above"
    min_calls: int = 0
    share: bool = False
    short_under: float = DEFAULT_SHORT_S
    codes: frozenset[int] = frozenset(DEFAULT_CODES)
    clear_at: float | None = None
    clear_after: float = 0.0
    block_for: float | None = None
    min_sleep: float = 0.0
    active: Active | None = None
    filter: tuple[tuple[str, frozenset[str]], ...] = ()
    forecast: bool = False
    forecast_over: float = 3600.0
    cap: int = 1  # distinct destinations kept: one more than the highest level compared with
    block_at: float | None = None
    call_direction: str = "outbound"
    horizon: float = 0.0  # how long after a key's last call its tally may still matter (set by `parse`)

    @property
    def below(self) -> bool:
        return self.direction == "below"


class Reading(NamedTuple):
    """What `measure` found besides the Finding's value: the engine's emission policy reads it."""

    tally: Tally
    name: str  # the tally's key in `SubjectState.tallies`
    defined: bool  # the measure is defined and min_calls is met
    below: bool
    sliding: bool
    calls: int
    eta: float | None  # forecast: when the block level would be reached at the recent pace (epoch s)


# -- reading a pack row ----------------------------------------------------------------------------------


def duration(value: Any, name: str) -> float:
    """`60s`, `10m`, `1h`, `2d`, or a number of seconds; positive."""
    if isinstance(value, bool):
        raise ValueError(f"field {name}: expected a duration such as 60s, 10m, 1h, got {value!r}")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"field {name}: expected a duration such as 60s, 10m, 1h, got {value!r}")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def window_of(raw: Any) -> tuple[str, dict[str, float]]:
    """The `window:` field: (the Rule's window name, its numbers). `local_day`, `utc_day`, `{days: N}`,
    `{sliding: 60s}`."""
    if raw in ("local_day", "utc_day"):
        return str(raw), {"days": 1}
    if isinstance(raw, Mapping) and len(raw) == 1:
        (name, value), = raw.items()
        if name == "sliding":
            seconds = duration(value, "window.sliding")
            width = max(1.0, seconds // BUCKETS) if seconds >= BUCKETS else 1.0
            if seconds % width or seconds != int(seconds):
                raise ValueError(f"field window.sliding: {value!r} is not a whole number of {width:g} s buckets "
                                 "(use a multiple of 60 s above one minute)")
            return "sliding", {"seconds": seconds, "width": width, "span": seconds // width}
        if name == "days":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 366:
                raise ValueError(f"field window.days: expected a whole number of days from 1 to 366, got {value!r}")
            return "days", {"days": value}
    raise ValueError(f"field window: expected local_day, utc_day, {{days: N}} or {{sliding: DURATION}}, got {raw!r}")


def parse_active(raw: Any) -> Active:
    """`Mon-Fri 08:00-20:00 Europe/Paris` (days: a range, a comma list, or `daily`)."""
    words = str(raw).split() if isinstance(raw, str) else []
    if len(words) != 3:
        raise ValueError(f"field active: expected 'DAYS HH:MM-HH:MM ZONE' such as 'Mon-Fri 08:00-20:00 "
                         f"Europe/Paris', got {raw!r}")
    days_text, hours_text, zone_name = words
    weekdays: set[int] = set()
    for part in days_text.lower().split(","):
        if part == "daily":
            weekdays.update(range(7))
            continue
        ends = part.split("-")
        if len(ends) > 2 or not all(end in WEEKDAYS for end in ends):
            raise ValueError(f"field active: {days_text!r}: days are Mon..Sun, a range (Mon-Fri), a list "
                             "(Mon,Wed) or daily")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        weekdays.update((first + step) % 7 for step in range((last - first) % 7 + 1))
    period = hours_text.split("-")
    try:
        start = time.fromisoformat(period[0])
        end = None if period[1] == "24:00" else time.fromisoformat(period[1])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"field active: {hours_text!r} is not a period HH:MM-HH:MM") from exc
    if len(period) != 2 or end == start:
        raise ValueError(f"field active: {hours_text!r} is not a period HH:MM-HH:MM")
    try:
        tz = zone(zone_name)
    except CdrError as exc:
        raise ValueError(f"field active: {exc.reason}") from exc
    return Active(f"{days_text} {hours_text} {zone_name}", frozenset(weekdays), start, end, tz)


def parse_filter(raw: Any) -> tuple[tuple[str, frozenset[str]], ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"field filter: expected a mapping of {', '.join(FILTERS)} to a value or a list")
    conditions = []
    for name, value in raw.items():
        if name not in FILTERS:
            raise ValueError(f"field filter.{name}: unknown condition; known: {', '.join(FILTERS)}")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValueError(f"field filter.{name}: expected a non-empty string or list of strings, got {value!r}")
        if name == "direction" and (len(values) != 1 or values[0] not in ("outbound", "inbound")):
            raise ValueError(f"field filter.direction: expected outbound or inbound, got {value!r}")
        if name.endswith("_country"):
            bad = [v for v in values if not re.fullmatch(r"[A-Za-z]{2}", v)]
            if bad:
                raise ValueError(f"field filter.{name}: expected ISO 3166 alpha-2 codes (FR, US), got {bad}")
            values = [v.upper() for v in values]
        conditions.append((str(name), frozenset(values)))
    return tuple(conditions)


def parse(entry: Mapping[str, Any], thresholds: tuple[Threshold, ...], timezone: str) -> Spec:
    """A threshold row's own fields (beyond id, thresholds, window, timezone), checked; a ValueError's
    text starts with `field NAME:`."""
    measure = entry.get("measure")
    if measure not in MEASURES:
        raise ValueError(f"field measure: expected one of {', '.join(MEASURES)}, got {measure!r}")
    key = entry.get("key", "cli")
    if key not in KEYS:
        raise ValueError(f"field key: expected one of {', '.join(KEYS)}, got {key!r}")
    name, numbers = window_of(entry.get("window"))
    sliding = name == "sliding"
    direction = entry.get("direction", "above")
    if direction not in ("above", "below"):
        raise ValueError(f"field direction: expected above or below, got {direction!r}")
    options: dict[str, Any] = {"measure": measure, "key": key, "sliding": sliding, "direction": direction}
    if sliding:
        options.update(seconds=numbers["seconds"], width=numbers["width"], span=int(numbers["span"]))
    else:
        options.update(seconds=numbers["days"] * 86400.0, span=int(numbers["days"]))
    min_calls = entry.get("min_calls", 0)
    if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 0:
        raise ValueError(f"field min_calls: expected a whole number of calls, got {min_calls!r}")
    options["min_calls"] = min_calls
    share = entry.get("share", False)
    if not isinstance(share, bool):
        raise ValueError("field share: expected true or false")
    if share and measure not in SHARES:
        raise ValueError(f"field share: only {', '.join(sorted(SHARES))} can be read as a share, not {measure}")
    options["share"] = share
    if "short_under" in entry:
        if measure != "short_calls":
            raise ValueError("field short_under: only the measure short_calls takes it")
        options["short_under"] = duration(entry["short_under"], "short_under")
    if "codes" in entry:
        codes = entry["codes"]
        if measure != "rejections":
            raise ValueError("field codes: only the measure rejections takes it")
        if (not isinstance(codes, list) or not codes
                or not all(isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 699 for c in codes)):
            raise ValueError(f"field codes: expected a list of SIP final codes 400-699, got {codes!r}")
        options["codes"] = frozenset(codes)
    _levels(thresholds, direction == "below")
    blocks = [t for t in thresholds if t.kind == "block"]
    if len(blocks) > 1:
        raise ValueError("field thresholds: at most one block level (one block per caller ID and scope)")
    if blocks and key in ("tenant", "campaign"):
        raise ValueError(f"field thresholds: a block stops a caller ID, and key {key} names none: use kind alert")
    options["block_at"] = blocks[0].at if blocks else None
    ceiling = max(t.at for t in thresholds)
    if "hysteresis" in entry:
        _hysteresis(entry["hysteresis"], sliding, thresholds, direction == "below", bool(blocks), options)
        ceiling = max(ceiling, options.get("clear_at") or 0)
    options["cap"] = math.ceil(ceiling) + 1
    if "active" in entry:
        options["active"] = parse_active(entry["active"])
    if "filter" in entry:
        conditions = parse_filter(entry["filter"])
        options["filter"] = tuple(c for c in conditions if c[0] != "direction")
        for name_, values in conditions:
            if name_ == "direction":
                options["call_direction"] = next(iter(values))
        if options.get("call_direction") == "inbound" and (key != "cli" or any(c[0] == "caller_country"
                                                                                for c in options["filter"])):
            raise ValueError("field filter.direction: an inbound rule counts per number called (key cli), "
                             "without caller_country")
    forecast = entry.get("forecast", False)
    if not isinstance(forecast, bool):
        raise ValueError("field forecast: expected true or false")
    if forecast:
        if sliding:
            raise ValueError("field forecast: a sliding window never ends; forecast a calendar window "
                             "(local_day, utc_day, days)")
        if measure != "calls" or direction != "above" or not blocks:
            raise ValueError("field forecast: needs the measure calls, direction above and a block level "
                             "to forecast")
        options["forecast"] = True
    if "forecast_over" in entry:
        if not forecast:
            raise ValueError("field forecast_over: only with forecast: true")
        over = duration(entry["forecast_over"], "forecast_over")
        if over < 60 or over % 60:
            raise ValueError(f"field forecast_over: expected a whole number of minutes, got {entry['forecast_over']!r}")
        options["forecast_over"] = over
    del timezone  # the calendar windows' zone is the Rule's, read through `Call.window`
    pauses = max(options.get("clear_after", 0.0), options.get("min_sleep", 0.0))
    options["horizon"] = options["seconds"] + pauses + 7200.0
    return Spec(**options)


def _levels(thresholds: tuple[Threshold, ...], below: bool) -> None:
    levels = [t.at for t in thresholds]
    wanted = sorted(set(levels), reverse=below)
    if levels != wanted:
        order = "descending (direction below)" if below else "ascending"
        raise ValueError(f"field thresholds: 'at' values must be strictly {order}, got {levels}")


def _hysteresis(raw: Any, sliding: bool, thresholds: tuple[Threshold, ...], below: bool, blocks: bool,
                options: dict[str, Any]) -> None:
    if not isinstance(raw, Mapping):
        raise ValueError("field hysteresis: expected a mapping of clear_at, clear_after, for, min_sleep")
    if not sliding:
        raise ValueError("field hysteresis: only a sliding window clears; a calendar window's alert and block "
                         "last until the window ends")
    unknown = set(raw) - {"clear_at", "clear_after", "for", "min_sleep"}
    if unknown:
        raise ValueError(f"field hysteresis.{sorted(map(str, unknown))[0]}: unknown; known: clear_at, "
                         "clear_after, for, min_sleep")
    if "clear_at" in raw:
        clear_at = raw["clear_at"]
        if isinstance(clear_at, bool) or not isinstance(clear_at, int | float) or clear_at < 0:
            raise ValueError(f"field hysteresis.clear_at: expected a number, got {clear_at!r}")
        first = thresholds[0].at
        if (clear_at < first) if below else (clear_at > first):
            side = "at or above" if below else "at or below"
            raise ValueError(f"field hysteresis.clear_at: must be {side} the first level {first:g}, got {clear_at:g}")
        options["clear_at"] = float(clear_at)
    for name, field in (("clear_after", "clear_after"), ("min_sleep", "min_sleep"), ("for", "block_for")):
        if name in raw:
            options[field] = duration(raw[name], f"hysteresis.{name}")
    if "block_for" in options and not blocks:
        raise ValueError("field hysteresis.for: how long a block lasts, and no level is a block")


def spec_of(rule: Rule) -> RuleSpec:
    """A rule's registry entry: its check's, or for a rule declared wholly in a pack, the threshold kind's."""
    return registry().get(rule.id) or declared_spec(rule)


def declared_spec(rule: Rule) -> RuleSpec:
    """The registry entry of a rule declared wholly in a pack (no check of its own)."""
    spec: Spec = rule.config
    keyed = threshold_key if spec.key in ("tenant", "campaign") else None
    needs = tuple(name for name in ("tenant", "campaign", "purpose")
                  if name == spec.key or any(c[0] == name for c in spec.filter))
    return RuleSpec(rule.id, "threshold", measure, (rule.window,), direction=spec.call_direction,
                    inventory="optional", lifted_by=frozenset({"time", "operator"}), needs=needs, keyed=keyed)


# -- judging a call --------------------------------------------------------------------------------------


def admits(spec: Spec, call: Call) -> bool:
    """Whether the rule counts this call: its `filter`, then its `active` period."""
    cdr = call.cdr
    for name, values in spec.filter:
        if name == "destination_country":
            value = call.destination.region
        elif name == "caller_country":
            value = call.cli.region
        elif name == "purpose":
            value = call.purpose
        else:
            value = getattr(cdr, name)
        if value is None or value not in values:
            return False
    return spec.active is None or spec.active.permits(cdr.started_at)


def threshold_key(call: Call, rule: Rule) -> str | None:
    """The keyed state a call counts in, for the keys tenant and campaign (None: the call has no such
    field, or the rule does not count it)."""
    spec: Spec = rule.config
    value = call.cdr.tenant if spec.key == "tenant" else call.cdr.campaign
    if value is None or not admits(spec, call):
        return None
    return f"{rule.id}|{spec.key}|{value}"


def destination_hash(call: Call) -> str:
    """A keyed 64-bit hash of the called number: all a tally holds of it."""
    raw = strip_separators(call.cdr.destination).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=8, key=call.hash_key).hexdigest()


def measure(call: Call, rule: Rule, words: Callable[[float, int, Threshold | None], str] | None = None,
            usage: bool = False) -> Finding | None:
    """Count the call (if the row's filter and active period admit it) and read the measure. A rule with a
    check of its own (fr.daily_limit) calls this once it has decided the call counts, with its own `words`
    (value, count, threshold -> message); `usage` reports (count, cap) for the NOC's daily-cap gauge."""
    spec: Spec = rule.config
    if (spec.filter or spec.active is not None) and not admits(spec, call):
        return None
    scope: Mapping[str, str]
    if spec.key == "cli":
        scope, name = {}, rule.id
    elif spec.key == "cli+destination_country":
        country = call.destination.region
        if country is None:
            return None
        scope, name = {"destination_country": country}, f"{rule.id}|{country}"
    else:
        value = call.cdr.tenant if spec.key == "tenant" else call.cdr.campaign
        if value is None:
            return None
        scope, name = {spec.key: value}, rule.id
    state = call.state
    window = None if spec.sliding else call.window(rule)
    tally = state.tallies.get(name)
    if tally is None:
        tally = state.tallies[name] = Tally()
        if window is not None and spec.measure == "calls":
            carry_count(state, rule.id, window, tally)
    now = call.at
    if spec.key in ("tenant", "campaign"):
        state.expires = max(state.expires or 0.0, now + spec.horizon)
    cdr = call.cdr
    needs_hash = spec.measure in ("distinct_destinations", "sequential_same_destination")
    sums = count_call(spec, tally, now, None if window is None else window.ordinal, cdr.answered, cdr.duration_s,
                      cdr.sip_code, destination_hash(call) if needs_hash else "")
    if sums is None:
        return None
    calls, num = sums
    value, defined = _value(spec, calls, num)
    eta = None
    if spec.forecast and defined and window is not None:
        eta = _forecast(spec, tally, now, value, window)
    if (eta is None and not usage and not tally.active
            and not (defined and crossed(spec.below, value, rule.thresholds[0].at))):
        return None  # below every level, nothing in force to clear, no forecast: no decision can follow
    reading = Reading(tally, name, defined, spec.below, spec.sliding, int(calls), eta)
    count = int(calls) if spec.measure in RATIOS or spec.share else int(value)
    subject = call.subject
    label = window.key if window is not None else ""  # a sliding window's messages name no day
    if words is None:
        def text(threshold: Threshold | None) -> str:
            return describe(spec, rule, subject, cdr.tenant, cdr.campaign, scope, value, int(calls), label, threshold)
    else:
        def text(threshold: Threshold | None) -> str:
            return words(value, count, threshold)
    return Finding(text, scope=scope, value=value if defined else math.nan, count=count,
                   usage=(count, rule.thresholds[-1].at) if usage else None, measure=reading)


def carry_count(state: SubjectState, rule_id: str, window: Window, tally: Tally) -> None:
    """The day's calls counted by a release before threshold rules (`counts["fr.daily_limit|2026-03-29"]`)
    become the new tally's day, so a worker upgraded mid-day does not restart the French cap from zero."""
    entry = state.counts.pop(f"{rule_id}|{window.key}", None)
    if entry:
        tally.top = window.ordinal
        tally.add(window.ordinal, float(entry[0]), 0.0)


def count_call(spec: Spec, tally: Tally, now: float, day: int | None, answered: bool, duration_s: float,
               sip_code: int | None, destination: str) -> tuple[float, float] | None:
    """Count one call at event time `now` (`day`: a calendar window's day ordinal in the rule's zone) in a
    key's tally; return the window's (calls, numerator) for the measure (distinct_destinations: (0, their
    number)), or None for a call too late for its window. `destination`: its keyed hash, when the measure
    reads it. The whole per-call state update of a threshold rule: what the bounded-state test drives."""
    if day is None:
        index = int(now // spec.width)
        if index <= tally.top - spec.span:
            return None  # later than the window: it no longer counts
        tally.advance(index, spec.span)
        first = tally.top - spec.span + 1
    else:
        index = day
        if index > tally.top:
            tally.top = index
            tally.drop_before(index - spec.span - 1)
        elif index < tally.top - spec.span - 1:
            return None
        first = index - spec.span + 1
    if now + spec.horizon > tally.stale_at:
        tally.stale_at = now + spec.horizon
    measure = spec.measure
    if measure == "calls":
        tally.add(index, 1.0, 0.0)
    elif measure == "distinct_destinations":
        tally.add(index, 1.0, 0.0)
        return 0.0, float(tally.see(destination, index, first - 1, spec.cap))
    elif measure in ("answered", "answer_rate"):
        tally.add(index, 1.0, 1.0 if answered else 0.0)
    elif measure == "short_calls":
        if answered:  # its calls are answered calls (a share of short answered calls)
            tally.add(index, 1.0, 1.0 if duration_s < spec.short_under else 0.0)
    elif measure == "avg_talk_s":
        if answered:
            tally.add(index, 1.0, float(duration_s))
    elif measure == "rejections":
        tally.add(index, 1.0, 1.0 if sip_code in spec.codes else 0.0)
    else:  # sequential_same_destination: the run of calls to one destination
        if destination != tally.streak:
            tally.restart_streak(destination)
        tally.add(index, 1.0, 1.0)
    if day is None:
        return tally.calls, tally.num
    return tally.sums(first, index)


def _value(spec: Spec, calls: float, num: float) -> tuple[float, bool]:
    """The measure from a window's sums, and whether it is defined (a ratio needs calls, and min_calls)."""
    measure = spec.measure
    if measure == "distinct_destinations":
        return num, True
    if measure == "answer_rate" or spec.share:
        return (100.0 * num / calls if calls else 0.0), calls > 0 and calls >= spec.min_calls
    if measure == "avg_talk_s":
        return (num / calls if calls else 0.0), calls > 0 and calls >= spec.min_calls
    value = calls if measure == "calls" else num
    return value, calls >= spec.min_calls


def _forecast(spec: Spec, tally: Tally, now: float, value: float, window: Window) -> float | None:
    """When, at the pace of the last `forecast_over`, the key reaches its block level, if before its window
    ends (else None). The pace is calls over the whole `forecast_over`, so a few early calls forecast
    nothing."""
    width = spec.forecast_over / BUCKETS
    paced = tally.tick(int(now // width), BUCKETS)
    assert spec.block_at is not None
    if value >= spec.block_at or paced <= 0:
        return None
    eta = now + (spec.block_at - value) * spec.forecast_over / paced
    return eta if eta < window.end_ts else None


def crossed(spec_below: bool, value: float, at: float) -> bool:
    """Whether a defined measure passes a level: reaching it from below, falling under it (direction below)."""
    return value < at if spec_below else value >= at


def in_force(spec: Spec, calls: float, num: float, clear_at: float) -> bool:
    """Whether a level's decision stays in force on these window sums: the measure is defined and still
    past `clear_at` (a measure that is not defined, as a ratio under min_calls, is back)."""
    value, defined = _value(spec, calls, num)
    return defined and crossed(spec.below, value, clear_at)


def _leaving(spec: Spec, tally: Tally) -> list[tuple[float, float, float]]:
    """What a sliding window loses as time passes with no call: (when, calls, numerator) per bucket, in
    time order (a bucket leaves once the window's end is `span` buckets past it). distinct_destinations'
    numerator is its destinations, each leaving with the bucket of its latest call."""
    leaving: dict[int, list[float]] = {k: [c, 0.0 if spec.measure == "distinct_destinations" else n]
                                       for k, (c, n) in tally.buckets.items()}
    if spec.measure == "distinct_destinations":
        for seen in tally.dests.values():
            leaving.setdefault(seen, [0.0, 0.0])[1] += 1.0
    return [((k + spec.span) * spec.width, c, n) for k, (c, n) in sorted(leaving.items())]


def clear_plan(spec: Spec, tally: Tally, clear_at: float, now: float,
               since: float | None) -> tuple[float, float] | None:
    """When a level in force on a sliding window clears if its key makes no further call: (since, at),
    the measure being back past `clear_at` from `since` on and the level clearing `clear_after` later;
    None if it never does without calls (a count that must stay *above* a level, say).

    `now`: the key's latest call; `since`: when the run back past `clear_at` that reached that call began
    (None: now, if the measure is back after it). The window
    only loses buckets from now on, so the measure changes at each bucket's leaving time: this walks
    them. What the stream's timers and replay's event time both act on, so a caller ID that stops
    calling has its alert resolved at the same instant in both; its next call, if any, acts on it first.
    The window's sums are taken from the end (exact once every bucket has left)."""
    leaving = _leaving(spec, tally)
    calls = [0.0] * (len(leaving) + 1)
    nums = [0.0] * (len(leaving) + 1)
    for i in range(len(leaving) - 1, -1, -1):  # what is left of the window after the first i buckets leave
        calls[i] = calls[i + 1] + leaving[i][1]
        nums[i] = nums[i + 1] + leaving[i][2]
    run = None if in_force(spec, calls[0], nums[0], clear_at) else (now if since is None else since)
    for i, (when, _c, _n) in enumerate(leaving):
        if run is not None and run + spec.clear_after <= when:
            break
        if in_force(spec, calls[i + 1], nums[i + 1], clear_at):
            run = None
        elif run is None:
            run = when
    return None if run is None else (run, run + spec.clear_after)


def window_at(spec: Spec, tally: Tally, moment: float) -> tuple[float, int]:
    """A sliding window's measure at `moment` with no call since its last one: (value, calls), for the
    message of a clear decided between calls."""
    floor = int(moment // spec.width) - spec.span
    calls = num = 0.0
    for key, (c, n) in tally.buckets.items():
        if key > floor:
            calls += c
            num += n
    if spec.measure == "distinct_destinations":
        num = float(sum(1 for seen in tally.dests.values() if seen > floor))
    return _value(spec, calls, num)[0], int(calls)


# -- words ---------------------------------------------------------------------------------------------


def span_text(seconds: float) -> str:
    """`60 s`, `10 min`, `1 h`, `2 d`: the largest unit that divides it (a minute counts in seconds)."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= max(size, 120) and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _unit(spec: Spec) -> str:
    if spec.measure == "answer_rate" or spec.share:
        return " %"
    if spec.measure == "avg_talk_s":
        return " s"
    return ""


def _window_text(spec: Spec, rule: Rule, day: str | None) -> str:
    """The window in a message (`day`: the calendar window's last day) or, with `day` None, in a sentence."""
    if spec.sliding:
        return f"in any {span_text(spec.seconds)}" if day is None else f"in the last {span_text(spec.seconds)}"
    zone_text = "UTC" if rule.window == "utc_day" else rule.timezone
    if day is not None:
        return f"on {day} ({zone_text})" if spec.span == 1 else f"in the {spec.span} days to {day} ({zone_text})"
    if spec.span == 1:
        return "in one UTC day" if rule.window == "utc_day" else f"in one local day ({zone_text})"
    return f"in {spec.span} local days ({zone_text})"


def _measure_text(spec: Spec, value: float, calls: int) -> str:
    """What the key did, with its value."""
    measure, v = spec.measure, value
    if measure == "calls":
        return f"made {v:g} calls"
    if measure == "answered":
        return f"had {v:.1f} % of its calls answered" if spec.share else f"had {v:g} answered calls"
    if measure == "short_calls":
        under = f"shorter than {spec.short_under:g} s"
        return (f"had {v:.1f} % of its {calls} answered calls {under}" if spec.share
                else f"had {v:g} answered calls {under}")
    if measure == "rejections":
        codes = "/".join(str(c) for c in sorted(spec.codes))
        return (f"had {v:.1f} % of its {calls} calls rejected with SIP {codes}" if spec.share
                else f"had {v:g} calls rejected with SIP {codes}")
    if measure == "distinct_destinations":
        return f"called {'at least ' if v >= spec.cap else ''}{v:g} distinct destinations"
    if measure == "answer_rate":
        return f"had an answer rate of {v:.1f} % over {calls} calls"
    if measure == "avg_talk_s":
        return f"had an average talk time of {v:.1f} s over {calls} answered calls"
    return f"made {v:g} calls in a row to one destination"


def _who(spec: Spec, subject: str, tenant: str | None, campaign: str | None, scope: Mapping[str, str]) -> str:
    if spec.key == "tenant":
        return f"Tenant {tenant} (this call from caller ID {subject})"
    if spec.key == "campaign":
        return f"Campaign {campaign} (this call from caller ID {subject})"
    if spec.key == "cli+destination_country":
        return f"Caller ID {subject}, to {scope.get('destination_country')},"
    return f"Caller ID {subject}"


def describe(spec: Spec, rule: Rule, subject: str, tenant: str | None, campaign: str | None,
             scope: Mapping[str, str], value: float, calls: int, label: str, threshold: Threshold | None) -> str:
    """A declared rule's decision message: who, what, over which window, against which level."""
    text = (f"{_who(spec, subject, tenant, campaign, scope)} {_measure_text(spec, value, calls)} "
            f"{_window_text(spec, rule, label)}")
    if threshold is not None:
        relation = "under" if spec.below else "at or over"
        text += f": {relation} the {threshold.severity} {threshold.kind} level {threshold.at:g}{_unit(spec)}"
    return text + f" ({rule.id})."


def cleared_text(spec: Spec, rule: Rule, level: Threshold, decision: Mapping[str, Any], value: float,
                 calls: int) -> str:
    """The message of a level cleared (a `resolve`, or the `unblock` of a sliding block): the key, its
    measure when it cleared, the hysteresis it met. Made from the decision in force, not from a call, as
    a clear may come between calls."""
    scope = decision.get("scope") or {}
    if spec.key in ("tenant", "campaign"):
        who = f"{spec.key.title()} {scope.get(spec.key)}"
    else:
        who = _who(spec, decision["caller_id"], None, None, scope)
    clear_at = level.at if spec.clear_at is None else spec.clear_at
    side = "above" if spec.below else "below"
    after = f" for {span_text(spec.clear_after)}" if spec.clear_after else ""
    return (f"{who} {_measure_text(spec, value, calls)} {_window_text(spec, rule, '')}: back {side} "
            f"{clear_at:g}{_unit(spec)}{after}, the {level.severity} {level.kind} is cleared ({rule.id}).")


def _level_clause(spec: Spec, at: float) -> str:
    """The measure reaching a level, as the rule's sentence says it."""
    a, below, measure = f"{at:g}", spec.below, spec.measure
    more = f"fewer than {a}" if below else f"{a} or more"
    if measure == "answer_rate":
        return f"has an answer rate {'below' if below else 'of at least'} {a} %"
    if measure == "avg_talk_s":
        return f"has an average talk time {'below' if below else 'of at least'} {a} s"
    if spec.share:
        share = f"{'less than' if below else 'at least'} {a} %"
        return {"answered": f"has {share} of its calls answered",
                "short_calls": f"has {share} of its answered calls shorter than {spec.short_under:g} s",
                "rejections": f"has {share} of its calls rejected with SIP "
                              f"{'/'.join(str(c) for c in sorted(spec.codes))}"}[measure]
    return {"calls": f"makes {more} calls",
            "answered": f"has {more} answered calls",
            "short_calls": f"has {more} answered calls shorter than {spec.short_under:g} s",
            "rejections": f"has {more} calls rejected with SIP {'/'.join(str(c) for c in sorted(spec.codes))}",
            "distinct_destinations": f"calls {more} distinct destinations",
            "sequential_same_destination": f"makes {more} calls in a row to one destination"}[measure]


def explain(rule: Rule, check_doc: str | None = None) -> str:
    """A threshold rule in one sentence ("alert (warning) when a caller ID makes 30 or more calls in any
    60 s, Mon-Fri 08:00-20:00 Europe/Paris")."""
    spec: Spec = rule.config
    subject = {"cli": "a caller ID", "cli+destination_country": "a caller ID (per destination country)",
               "tenant": "a tenant", "campaign": "a campaign"}[spec.key]
    first, *others = rule.thresholds
    text = (f"{first.kind} ({first.severity}) when {subject} {_level_clause(spec, first.at)} "
            f"{_window_text(spec, rule, None)}")
    for level in others:
        text += f", {level.kind} ({level.severity}) at {level.at:g}{_unit(spec)}"
    if spec.min_calls:
        text += f", over at least {spec.min_calls} {'answered ' if spec.measure in PER_ANSWERED else ''}calls"
    if spec.active is not None:
        text += f", {spec.active.text}"
    for name, values in spec.filter:
        text += f", for calls whose {name} is {' or '.join(sorted(values))}"
    if spec.call_direction == "inbound":
        text += ", counting inbound calls to each of our numbers"
    if check_doc:
        text += f", counting only {check_doc}"
    if spec.sliding:
        clear_at = spec.clear_at if spec.clear_at is not None else first.at
        side = "above" if spec.below else "below"
        after = f" for {span_text(spec.clear_after)}" if spec.clear_after else ""
        text += f"; it clears once back {side} {clear_at:g}{_unit(spec)}{after}"
        if spec.block_at is not None:
            text += (f"; a block lasts {span_text(spec.block_for)} at most" if spec.block_for
                     else "; a block lasts until cleared")
        if spec.min_sleep:
            text += f"; at most one firing per {span_text(spec.min_sleep)}"
    if spec.forecast:
        text += (f"; warns once per window when the pace of the last {span_text(spec.forecast_over)} would reach "
                 f"{spec.block_at:g} before the window ends")
    return text + "."


def projected(eta: float, zone_name: str) -> str:
    """A forecast time as the NOC reads it: the minute, in the rule's zone."""
    return f"{datetime.fromtimestamp(eta, UTC).astimezone(zone(zone_name)):%H:%M} {zone_name}"
