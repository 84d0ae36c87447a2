"""streams/clears.py: the worker's index of planned threshold clears, which event time acts on."""

from streams.clears import ClearIndex


def test_a_subject_is_due_once_by_its_earliest_clear_on_its_own_partition() -> None:
    index = ClearIndex()
    index.note(1, "+33184884106", 200.0)
    index.note(1, "+33184884106", 300.0)  # planned later: the earlier entry stands until it comes due
    index.note(1, "+33184884108", 150.0)
    index.note(3, "+33184884110", 100.0)
    assert index.due(1, 149.0) == []
    assert index.due(1, 250.0) == ["+33184884108", "+33184884106"]
    assert index.due(1, 1e9) == []  # taken off: the worker notes the subject again if it still plans one
    assert index.due(2, 1e9) == []
    index.note(1, "+33184884106", 120.0)
    index.note(1, "+33184884106", 110.0)  # planned earlier: that one counts
    assert index.partitions() == [1, 3]
    assert index.due(1, 115.0) == ["+33184884106"] and index.due(3, 115.0) == ["+33184884110"]
    assert index.partitions() == [1]  # the later entry of 120, stale: found and dropped when it comes due
    index.reset()
    assert index.partitions() == []
