"""SeenCalls keeps its packed form equal to packing the dict anew, whatever is done to it."""

from __future__ import annotations

import copy
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.state import SeenCalls, SubjectState, pack_seen

KEYS = st.integers(min_value=-5, max_value=5)
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.floats(0, 1e9)),
    st.tuples(st.just("del"), KEYS, st.just(0.0)),
    st.tuples(st.just("prune"), st.integers(0, 4), st.just(0.0)),
    st.tuples(st.just("pack"), st.just(0), st.just(0.0)),
    st.tuples(st.sampled_from(["pop", "popitem", "clear", "setdefault", "update", "ior"]), KEYS, st.floats(0, 1e9)),
), max_size=60)


@settings(max_examples=600, deadline=None)
@given(OPS, st.lists(st.tuples(KEYS, st.floats(0, 1e9)), max_size=5))
def test_packed_equals_a_fresh_pack(ops, start):
    seen, plain = SeenCalls(start), dict(start)
    for op, key, value in ops:
        if op == "set":
            seen[key] = value
            plain[key] = value
        elif op == "del":
            if key in plain:
                del seen[key]
                del plain[key]
        elif op == "prune":
            for k in list(plain)[:key]:
                del seen[k]
                del plain[k]
        elif op == "pack":
            assert seen.packed() == pack_seen(plain)
        elif op == "pop":
            assert seen.pop(key, None) == plain.pop(key, None)
        elif op == "popitem":
            if plain:
                assert seen.popitem() == plain.popitem()
        elif op == "clear":
            seen.clear()
            plain.clear()
        elif op == "setdefault":
            seen.setdefault(key, value)
            plain.setdefault(key, value)
        elif op == "update":
            seen.update({key: value})
            plain.update({key: value})
        elif op == "ior":
            seen |= {key: value}
            plain |= {key: value}
        assert list(seen.items()) == list(plain.items())
    assert seen.packed() == pack_seen(plain)
    copies = (copy.deepcopy(seen), copy.copy(seen), pickle.loads(pickle.dumps(seen)), SeenCalls.unpack(seen.packed()))
    for other in copies:
        assert list(other.items()) == list(plain.items())
        if isinstance(other, SeenCalls):
            other[99] = 1.0
            assert other.packed() == pack_seen({**plain, 99: 1.0})


def test_a_state_written_with_a_plain_dict_packs_it_too():
    state = SubjectState()
    state.seen = {1: 2.0, 3: 4.0}
    again = SubjectState.from_dict(state.to_dict())
    assert isinstance(again.seen, SeenCalls) and dict(again.seen) == state.seen
    assert again.to_dict() == state.to_dict()


def test_unpack_of_a_key_twice_packs_the_dict():
    seen = SeenCalls.unpack(pack_seen({1: 2.0}) + pack_seen({1: 3.0}))
    assert dict(seen) == {1: 3.0} and seen.packed() == pack_seen({1: 3.0})


def test_to_record_writes_the_bytes_json_writes():
    import json
    from datetime import UTC, datetime, timedelta

    from rules.cdr import Cdr
    from rules.engine import Engine
    from rules.pack import load_packs

    engine = Engine(load_packs())
    state = SubjectState()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(3000):
        engine.process(Cdr(call_id=f"c{i}", started_at=start + i * timedelta(seconds=60), caller_id="+33184884000",
                           destination=f"+3361{i % 900:07d}", answered=i % 3 == 0, duration_s=4.0 * (i % 3 == 0),
                           sip_code=200 if i % 3 == 0 else 603, attestation="B"), state)
        if i % 97 == 0:
            value, record = state.to_record()
            assert value == state.to_dict()
            assert record == json.dumps(value, separators=(",", ":")).encode()
    assert len(state.seen) > 1000 and state.tallies is not None
    empty = SubjectState()
    assert empty.to_record()[1] == json.dumps(empty.to_dict(), separators=(",", ":")).encode()
