"""A threshold rule's memory of one key: its measure over a window, in a fixed number of buckets.

Why buckets: a sliding window over exact call times grows with the traffic (a dialer runaway makes
thousands of calls a minute); OpenSIPS users asked for bounded state (fraud_detection #3411), and the
spam-risk model already keeps counts per bucket. A window is the last `span` buckets: a sliding window of
D seconds is D/60-second buckets (so it covers between D - D/60 and D seconds back), a window of N calendar
days is one bucket per local day. Each bucket holds two numbers (calls, and the measure's numerator:
answered, short, rejected calls, talk seconds or the current streak); distinct destinations are kept as
keyed 8-byte hashes, at most `cap` of them (the highest level a rule compares with, so the count is exact
up to it). So a key's state is a few dozen numbers whatever it does, and the 10-million-call test holds it.

A tally is one value of `SubjectState.tallies` (JSON-ready through `to_dict`/`from_dict`), read and
written with its state, so replay and the stream hold the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Tally:
    """Buckets of one rule and key. `top` is the newest bucket seen; `calls`/`num` the running sums of the
    buckets in the sliding window ending at `top` (calendar windows sum on demand: they are evaluated at
    the call's own day)."""

    __slots__ = ("active", "back", "buckets", "calls", "dests", "last", "num", "pace", "paced", "stale_at",
                 "streak", "top")

    def __init__(self) -> None:
        self.top = -1
        self.buckets: dict[int, list[float]] = {}  # bucket index -> [calls, numerator]
        self.calls = 0.0
        self.num = 0.0
        self.dests: dict[str, int] = {}  # destination hash -> bucket of its latest call (recency order)
        self.streak = ""  # the destination hash of the current run of calls (sequential_same_destination)
        self.pace: dict[int, int] = {}  # forecast: calls per pace bucket
        self.paced = 0  # their sum over the pace window
        self.active: dict[int, dict[str, Any]] = {}  # threshold index -> its decision in force (sliding)
        self.back: dict[int, float] = {}  # threshold index -> since when the measure is back past clear_at
        #   (or will be, with no further call: `SubjectState.clears` holds when it then clears)
        self.last: dict[int, float] = {}  # threshold index -> when it last fired (min_sleep)
        self.stale_at = 0.0  # event time after which nothing here can matter, if nothing is active

    # -- counting --------------------------------------------------------------------------------

    def advance(self, index: int, span: int) -> None:
        """Move the sliding window's end to bucket `index` (if newer), dropping the buckets it leaves."""
        if index <= self.top:
            return
        old = self.top
        self.top = index
        floor = index - span
        if old - floor >= 0 and self.buckets:
            for key in [k for k in self.buckets if k <= floor]:
                calls, num = self.buckets.pop(key)
                self.calls -= calls
                self.num -= num
        elif self.buckets:  # every bucket left the window
            self.buckets.clear()
            self.calls = self.num = 0.0

    def add(self, index: int, calls: float, num: float) -> None:
        bucket = self.buckets.get(index)
        if bucket is None:
            self.buckets[index] = [calls, num]
        else:
            bucket[0] += calls
            bucket[1] += num
        self.calls += calls
        self.num += num

    def restart_streak(self, streak: str) -> None:
        """A call to another destination ends the run: the numerators (the run's calls) go to zero."""
        self.streak = streak
        for bucket in self.buckets.values():
            bucket[1] = 0.0
        self.num = 0.0

    def drop_before(self, index: int) -> None:
        """Calendar windows: forget the buckets before `index` (no late record reaches them any more)."""
        for key in [k for k in self.buckets if k < index]:
            del self.buckets[key]

    def sums(self, first: int, last: int) -> tuple[float, float]:
        """(calls, numerator) of buckets first..last (a calendar window, evaluated at a call's day)."""
        if first == last:
            bucket = self.buckets.get(last)
            return (0.0, 0.0) if bucket is None else (bucket[0], bucket[1])
        calls = num = 0.0
        for key, (c, n) in self.buckets.items():
            if first <= key <= last:
                calls += c
                num += n
        return calls, num

    def see(self, destination: str, index: int, floor: int, cap: int) -> int:
        """Note a call to `destination` (a hash) in bucket `index`; forget those last called in buckets up to
        `floor`; return the distinct destinations left, at most `cap` (the oldest beyond it are dropped: if
        `cap` or more were called in the window, the `cap` most recent ones all were)."""
        dests = self.dests
        dests.pop(destination, None)
        dests[destination] = index
        stale = []
        for key, seen in dests.items():  # recency order: stop at the first one still in the window
            if seen > floor:
                break
            stale.append(key)
        for key in stale:
            del dests[key]
        while len(dests) > cap:
            del dests[next(iter(dests))]
        return len(dests)

    def tick(self, index: int, span: int) -> int:
        """Count a call in pace bucket `index` (forecast) and return the calls of the last `span` of them."""
        floor = index - span
        if self.pace and min(self.pace) <= floor:
            for key in [k for k in self.pace if k <= floor]:
                self.paced -= self.pace.pop(key)
        if index > floor:
            self.pace[index] = self.pace.get(index, 0) + 1
            self.paced += 1
        return self.paced

    # -- size and storage ------------------------------------------------------------------------

    def size(self) -> int:
        """Entries held (what the bounded-state test measures)."""
        return len(self.buckets) + len(self.dests) + len(self.pace) + len(self.active) + len(self.back) + len(self.last)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"top": self.top, "b": [[k, c, n] for k, (c, n) in self.buckets.items()],
                                "s": self.stale_at}
        if self.dests:
            data["d"] = list(self.dests.items())
        if self.streak:
            data["r"] = self.streak
        if self.pace:
            data["p"] = list(self.pace.items())
        if self.active:
            data["a"] = {str(k): v for k, v in self.active.items()}
        if self.back:
            data["k"] = {str(k): v for k, v in self.back.items()}
        if self.last:
            data["l"] = {str(k): v for k, v in self.last.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        tally = cls()
        tally.top = int(data["top"])
        tally.buckets = {int(k): [float(c), float(n)] for k, c, n in data.get("b") or ()}
        tally.calls = sum(c for c, _ in tally.buckets.values())
        tally.num = sum(n for _, n in tally.buckets.values())
        tally.stale_at = float(data.get("s") or 0.0)
        tally.dests = {str(k): int(v) for k, v in data.get("d") or ()}
        tally.streak = str(data.get("r") or "")
        tally.pace = {int(k): int(v) for k, v in data.get("p") or ()}
        tally.paced = sum(tally.pace.values())
        tally.active = {int(k): dict(v) for k, v in (data.get("a") or {}).items()}
        tally.back = {int(k): float(v) for k, v in (data.get("k") or {}).items()}
        tally.last = {int(k): float(v) for k, v in (data.get("l") or {}).items()}
        return tally
