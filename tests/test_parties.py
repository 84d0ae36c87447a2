"""streams/parties.py: the unanswered rows of an Asterisk call held until a party answers, a row of the
next call comes or the wait ends; merged as the adapter merges a file, in arrival order, and the
partition's commit kept behind the held rows."""

from __future__ import annotations

from faust.types import TP

from streams.adapters.asterisk import merged_party
from streams.parties import REMEMBERED_CALLS, Party, PartyHold

TP0, TP1 = TP("cidwatch.raw.asterisk", 0), TP("cidwatch.raw.asterisk", 1)


def row(answered: bool, started: str = "2024-03-12T08:00:00Z", duration: float = 0.0, **extra: object) -> dict:
    return {"call_id": "1710234000.33", "started_at": started, "answered": answered, "duration_s": duration,
            **extra}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answered_party_releases_the_call_merged_at_once() -> None:
    hold = PartyHold(10.0, Clock())
    assert hold.before(TP0, "k") == []
    assert hold.add(TP0, "k", Party(row(False, "2024-03-12T08:00:05Z"), 7, 1.0)) is None
    assert hold.floor(TP0) == 7 and len(hold) == 1
    assert hold.before(TP0, "k") == []  # another row of the same call
    release = hold.add(TP0, "k", Party(row(True, "2024-03-12T08:00:06Z", 120.0), 8, 2.0))
    assert release is not None
    assert release.record == row(True, "2024-03-12T08:00:05Z", 120.0)  # earliest start, the answered party
    assert release.timestamp == 2.0
    assert hold.floor(TP0) is None and len(hold) == 0
    assert hold.seen(TP0, "k") and not hold.seen(TP1, "k")


def test_the_merge_is_the_adapters_merge() -> None:
    rows = [row(False, "2024-03-12T08:00:05Z"), row(False, "2024-03-12T08:00:04Z", sip_code=486),
            row(True, "2024-03-12T08:00:09Z", 60.0)]
    hold = PartyHold(10.0, Clock())
    released = [hold.add(TP0, "k", Party(r, i, None)) for i, r in enumerate(rows)]
    assert released[:2] == [None, None] and released[2] is not None
    assert released[2].record == merged_party(rows)


def test_a_row_of_the_next_call_releases_the_held_one_first() -> None:
    """A call's rows are consecutive lines: the next call's row means the held call is complete, and
    releasing it before that row keeps the calls in the order they were sent."""
    hold = PartyHold(10.0, Clock())
    hold.add(TP0, "a", Party(row(False, sip_code=480), 3, None))
    hold.add(TP0, "a", Party(row(False, sip_code=486), 4, None))
    hold.add(TP1, "c", Party(row(False), 9, None))
    (release,) = hold.before(TP0, "b")
    assert release.record["sip_code"] == 486  # nobody answered: the last row
    assert hold.floor(TP0) is None and hold.floor(TP1) == 9 and hold.seen(TP0, "a")
    hold.add(TP0, "b", Party(row(False), 5, None))
    assert len(hold.before(TP0, None)) == 1  # a record that is nobody's party (merge_parties: none)


def test_a_quiet_partitions_call_is_released_after_the_wait() -> None:
    clock = Clock()
    hold = PartyHold(10.0, clock)
    hold.add(TP0, "k", Party(row(False, "2024-03-12T08:00:09Z"), 3, None))
    hold.add(TP0, "k", Party(row(False, "2024-03-12T08:00:00Z", sip_code=486), 4, None))
    clock.now += 9.9
    assert hold.due() == []
    clock.now += 0.1
    ((tp, release),) = hold.due()
    assert tp == TP0 and release.record["sip_code"] == 486 and release.record["started_at"] == "2024-03-12T08:00:00Z"
    assert hold.floor(TP0) is None and hold.seen(TP0, "k") and hold.due() == []


def test_the_floor_is_the_held_calls_first_row() -> None:
    hold = PartyHold(10.0, Clock())
    hold.add(TP0, "a", Party(row(False), 12, None))
    hold.add(TP0, "a", Party(row(False), 13, None))
    hold.add(TP1, "c", Party(row(False), 4, None))
    assert (hold.floor(TP0), hold.floor(TP1)) == (12, 4)


def test_a_revocation_drops_everything_held() -> None:
    hold = PartyHold(10.0, Clock())
    hold.add(TP0, "a", Party(row(True), 12, None))
    hold.add(TP0, "b", Party(row(False), 13, None))
    hold.clear()
    assert len(hold) == 0 and hold.floor(TP0) is None and not hold.seen(TP0, "a")


def test_released_calls_are_remembered_within_a_bound() -> None:
    hold = PartyHold(10.0, Clock())
    for index in range(REMEMBERED_CALLS + 5):
        hold.add(TP0, f"call-{index}", Party(row(True), index, None))
    assert not hold.seen(TP0, "call-0") and hold.seen(TP0, f"call-{REMEMBERED_CALLS + 4}")
