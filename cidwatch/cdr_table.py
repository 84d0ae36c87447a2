"""Validated CDRs held in columns, so `replay` can sort a large input by time without keeping a
Python object per record: memory follows the state the engine keeps, not the size of the input.

Records are validated a chunk at a time and each chunk becomes an Arrow record batch (about 60 bytes
a record: caller IDs, tenants, campaigns and carriers are dictionary-encoded, as they repeat). A batch
may also carry `part`, the engine partition of the record's subject (see `cidwatch.replay`).
`sorted_table()` sorts by `started_at` (stable: records with the same time keep their input order, as
the stream sees them) and `cdrs_of` rebuilds `Cdr` objects one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from rules.cdr import ATTESTATIONS, DIRECTIONS, Cdr

CHUNK = 65_536
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
TEXT = ("call_id", "caller_id", "destination", "tenant", "campaign", "carrier", "purpose", "ingress_country")
REPEATED = frozenset({"caller_id", "tenant", "campaign", "carrier", "purpose", "ingress_country"})  # dictionary-encoded
NO_SIP = -1
_DIRECTION = {name: index for index, name in enumerate(DIRECTIONS)}
_ATTESTATION = {None: 0, **{letter: index + 1 for index, letter in enumerate(ATTESTATIONS)}}


def batch_of(cdrs: Sequence[Cdr], parts: Sequence[int] | None = None) -> pa.RecordBatch:
    """The columns of `cdrs` (and of their partitions, if given), in their order."""
    columns = []
    for name in TEXT:
        values = pa.array([getattr(cdr, name) for cdr in cdrs], type=pa.string())
        columns.append(values.dictionary_encode() if name in REPEATED else values)
    columns += [
        pa.array([(cdr.started_at - EPOCH) // MICROSECOND for cdr in cdrs], type=pa.int64()),
        pa.array([_DIRECTION[cdr.direction] for cdr in cdrs], type=pa.int8()),
        pa.array([cdr.answered for cdr in cdrs], type=pa.bool_()),
        pa.array([cdr.duration_s for cdr in cdrs], type=pa.float64()),
        pa.array([NO_SIP if cdr.sip_code is None else cdr.sip_code for cdr in cdrs], type=pa.int16()),
        pa.array([_ATTESTATION[cdr.attestation] for cdr in cdrs], type=pa.int8()),
    ]
    names = [*TEXT, "at", "direction", "answered", "duration", "sip", "attestation"]
    if parts is not None:
        columns.append(pa.array(parts, type=pa.int8()))
        names.append("part")
    return pa.record_batch(columns, names=names)


class CdrTable:
    """Validated CDRs in input order, in record batches."""

    def __init__(self) -> None:
        self._batches: list[pa.RecordBatch] = []
        self._pending: list[Cdr] = []
        self._parts: list[int] = []

    def __len__(self) -> int:
        return sum(batch.num_rows for batch in self._batches) + len(self._pending)

    def append(self, cdr: Cdr, part: int | None = None) -> None:
        self._pending.append(cdr)
        if part is not None:
            self._parts.append(part)
        if len(self._pending) >= CHUNK:
            self._freeze()

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Records validated elsewhere (a worker process), after those appended so far."""
        self._freeze()
        if batch.num_rows:
            self._batches.append(batch)

    def _freeze(self) -> None:
        if self._pending:
            self._batches.append(batch_of(self._pending, self._parts or None))
            self._pending, self._parts = [], []

    def sorted_table(self) -> pa.Table:
        """Every record, by `started_at` (stable); the table lets its batches go."""
        self._freeze()
        if not self._batches:
            return pa.Table.from_batches([batch_of([])])
        table = pa.Table.from_batches(self._batches).unify_dictionaries()
        self._batches = []
        order = np.argsort(table.column("at").to_numpy(), kind="stable")
        ordered = table.take(order)
        del table
        pa.default_memory_pool().release_unused()  # the unsorted copy's memory goes back to the system
        return ordered

    def ordered(self) -> Iterator[Cdr]:
        """Every record, by `started_at` (stable)."""
        return cdrs_of(self.sorted_table())

    def partition_files(self, parts: int, folder: Path) -> tuple[list[Path], np.ndarray]:
        """Every record, by `started_at` (stable), split by its `part` into one Arrow file per partition
        in `folder`, written a chunk at a time, each record with `record`, its place in that order;
        and every record's time (epoch seconds) in that order. The table lets its batches go: what
        is judged is read back a chunk at a time (`file_chunks`), so memory holds no copy of it."""
        self._freeze()
        table = pa.Table.from_batches(self._batches or [batch_of([], [])]).unify_dictionaries()
        self._batches = []
        at = table.column("at").to_numpy()
        order = np.argsort(at, kind="stable")
        seconds = at[order] / 1e6  # equal to each record's started_at.timestamp()
        part = table.column("part").to_numpy()[order]
        schema = table.schema.append(pa.field("record", pa.int64()))
        paths = []
        for number in range(parts):
            places = np.flatnonzero(part == number)
            path = folder / f"partition-{number}.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
                for start in range(0, len(places), CHUNK):
                    chunk = places[start:start + CHUNK]
                    writer.write_table(table.take(order[chunk]).append_column("record", pa.array(chunk)))
            paths.append(path)
        del table
        pa.default_memory_pool().release_unused()
        return paths, seconds


def table_chunks(table: pa.Table) -> Iterator[tuple[pa.Table, Sequence[int]]]:
    """A sorted table a chunk at a time, with each record's place in it."""
    for start in range(0, table.num_rows, CHUNK):
        yield table.slice(start, CHUNK), range(start, min(start + CHUNK, table.num_rows))


def file_chunks(path: Path) -> Iterator[tuple[pa.Table, Sequence[int]]]:
    """A partition file of `CdrTable.partition_files` a chunk at a time, with each record's place."""
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_file(source)
        for number in range(reader.num_record_batches):
            batch = reader.get_batch(number)
            yield pa.Table.from_batches([batch]), batch.column("record").to_numpy().tolist()


def _values(column: pa.ChunkedArray) -> list:
    """A column as Python values; a dictionary-encoded one decoded by hand (pyarrow's `to_pylist` of
    those is 25 times slower), each distinct string made once."""
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        return array.to_pylist()
    words = array.dictionary.to_pylist()
    indices = array.indices
    if indices.null_count:
        words.append(None)
        indices = indices.fill_null(len(words) - 1)
    return [words[i] for i in indices.to_numpy().tolist()]


def cdrs_of(table: pa.Table) -> Iterator[Cdr]:
    """The table's records as `Cdr` objects, in its order, built one chunk at a time (keep chunks small)."""
    for start in range(0, table.num_rows, CHUNK):
        part = table.slice(start, CHUNK)
        columns = [_values(part.column(name)) for name in (*TEXT, "at", "direction", "answered", "duration", "sip",
                                                            "attestation")]
        for call_id, caller_id, destination, tenant, campaign, carrier, purpose, ingress_country, at, direction, \
                answered, duration, sip, attestation in zip(*columns, strict=True):
            yield Cdr(
                call_id=call_id, started_at=EPOCH + timedelta(microseconds=at),
                direction=DIRECTIONS[direction], caller_id=caller_id, destination=destination,
                answered=answered, duration_s=duration, sip_code=None if sip == NO_SIP else sip,
                attestation=None if attestation == 0 else ATTESTATIONS[attestation - 1],
                tenant=tenant, campaign=campaign, carrier=carrier, purpose=purpose,
                ingress_country=ingress_country,
            )
