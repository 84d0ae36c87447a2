"""The worker's own offset bookkeeping (streams/offsets.py), without a broker: which events are
judged, what a batch may commit, and which partitions must be sought back.

The broker tests prove it end to end: test_faults.py (a kill, a survivor's takeover) and
test_stream.py (a second worker joining).
"""

from __future__ import annotations

import time

from fake_events import Event, Message
from faust.types import TP

from streams.offsets import InputOffsets, Position

P0, P1 = TP("t.cdr", 0), TP("t.cdr", 1)


def events(*pairs: tuple[TP, int]) -> list[Event]:
    return [Event(Message(tp.topic, tp.partition, offset)) for tp, offset in pairs]


def tracker(**starts: int) -> InputOffsets:
    offsets = InputOffsets(app=None, timeout=1.0)
    now = time.monotonic()
    for name, start in starts.items():
        tp = {"p0": P0, "p1": P1}[name]
        offsets.positions[tp] = Position(start, start, now)
    return offsets


def test_the_next_offsets_are_judged_and_reached():
    offsets = tracker(p0=10, p1=0)
    judged, reached, ahead = offsets.admit(events((P0, 10), (P1, 0), (P0, 11), (P1, 1)))
    assert [(e.message.partition, e.message.offset) for e in judged] == [(0, 10), (1, 0), (0, 11), (1, 1)]
    assert reached == {P0: 12, P1: 2} and not ahead


def test_a_re_delivery_is_skipped_and_not_committed_again():
    offsets = tracker(p0=10)
    judged, reached, ahead = offsets.admit(events((P0, 8), (P0, 9), (P0, 10)))
    assert [e.message.offset for e in judged] == [10]
    assert reached == {P0: 11} and not ahead


def test_records_skipped_on_the_way_stop_the_partition_and_are_not_committed():
    """Offsets 12 and 13 never reached the judge: nothing after them is judged or committed, and the
    partition is reported to be sought back to 12."""
    offsets = tracker(p0=10, p1=0)
    judged, reached, ahead = offsets.admit(events((P0, 10), (P0, 11), (P0, 14), (P1, 0), (P0, 15)))
    assert [(e.message.partition, e.message.offset) for e in judged] == [(0, 10), (0, 11), (1, 0)]
    assert reached == {P0: 12, P1: 1}
    assert ahead == {P0} and offsets.positions[P0].next == 12


def test_a_partition_caught_up_after_a_stale_record_is_not_sought():
    """Stale records ahead, then the re-fetched ones from the next offset: judged, no seek."""
    offsets = tracker(p0=10)
    judged, reached, ahead = offsets.admit(events((P0, 40), (P0, 41), (P0, 10), (P0, 11)))
    assert [e.message.offset for e in judged] == [10, 11]
    assert reached == {P0: 12} and not ahead


def test_a_partition_not_owned_is_ignored():
    offsets = tracker(p0=0)
    judged, reached, ahead = offsets.admit(events((P1, 0), (P1, 1)))
    assert not judged and not reached and not ahead


def test_a_quiet_partition_with_records_waiting_is_reported():
    offsets = tracker(p0=5, p1=7)
    offsets.quiet_seconds = 0.0
    ends = {P0: 9, P1: 7}
    time.sleep(0.01)
    assert offsets.quiet(ends.get) == [P0]  # P1 has nothing waiting
    offsets.quiet_seconds = 60.0
    assert offsets.quiet(ends.get) == []  # P0 delivered something recently enough


def test_reset_forgets_every_partition():
    offsets = tracker(p0=5)
    epoch = offsets.epoch
    offsets.reset()
    assert not offsets.positions and offsets.epoch == epoch + 1
