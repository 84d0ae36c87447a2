"""The in-memory store's kept offsets (streams/store.py), without a broker. test_faults.py's takeover
proves what they buy end to end: a survivor recovers only the partitions it was given."""

from __future__ import annotations

import asyncio

from fake_events import Event, Message
from faust.types import TP

from streams.app import in_partition_of
from streams.store import Store

CHANGELOG = "t.cidwatch-subjects-changelog"


def store() -> Store:
    return Store("cidwatchmemory://", app=None, table=None, table_name="subjects")


def test_recovery_and_own_writes_advance_the_offset_a_kept_partition_is_read_from():
    s = store()
    assert s.persisted_offset(TP(CHANGELOG, 0)) is None  # nothing known: read from the start
    s.apply_changelog_batch([Event(Message(CHANGELOG, 0, 4), key="a", value={"n": 1}),
                             Event(Message(CHANGELOG, 0, 9), key="b", value={"n": 2})], lambda k: k, lambda v: v)
    assert s.persisted_offset(TP(CHANGELOG, 0)) == 9 and s["b"] == {"n": 2}
    with in_partition_of(Event(Message(CHANGELOG, 0, 10))):
        s["c"] = {"n": 3}  # a write of the worker's own, under an event of its partition
    s.set_persisted_offset(TP(CHANGELOG, 0), 12)  # the worker's own changelog record, acknowledged
    s.set_persisted_offset(TP(CHANGELOG, 0), 11)  # an older acknowledgement arriving late
    assert s.persisted_offset(TP(CHANGELOG, 0)) == 12


def test_a_revoked_partition_loses_its_offset_and_its_keys():
    s = store()
    s.apply_changelog_batch([Event(Message(CHANGELOG, 0, 3), key="a", value={"n": 1})], lambda k: k, lambda v: v)
    with in_partition_of(Event(Message(CHANGELOG, 1, 0))):
        s["b"] = {"n": 2}
    s.set_persisted_offset(TP(CHANGELOG, 1), 5)
    asyncio.run(s.on_rebalance({TP(CHANGELOG, 0)}, {TP(CHANGELOG, 1)}, set()))
    asyncio.run(s.on_recovery_completed({TP(CHANGELOG, 0)}, set()))
    assert s.persisted_offset(TP(CHANGELOG, 1)) is None and "b" not in s
    assert s.persisted_offset(TP(CHANGELOG, 0)) == 3 and s["a"] == {"n": 1}


def test_a_deleted_key_leaves_its_partition_too():
    s = store()
    with in_partition_of(Event(Message(CHANGELOG, 2, 0))):
        s["k"] = {"n": 1}
    s.pop("k", None)  # what the worker does to an expired keyed state (its tombstone is sent beside)
    assert "k" not in s and "k" not in s._key_partition
