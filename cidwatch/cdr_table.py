"""Validated CDRs held in columns, so `replay` can sort a large input by time without keeping a
Python object per record: memory follows the state the engine keeps, not the size of the input.

Records are appended as they are validated; every `CHUNK` records the Python lists are frozen into
Arrow arrays (a few dozen bytes a record). `ordered()` sorts by `started_at` (stable: records with
the same time keep their input order, as the stream sees them) and rebuilds `Cdr` objects one chunk
at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from rules.cdr import ATTESTATIONS, DIRECTIONS, Cdr

CHUNK = 65_536
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TEXT = ("call_id", "caller_id", "destination", "tenant", "campaign", "carrier")
NO_SIP = -1


class CdrTable:
    def __init__(self) -> None:
        self._frozen: list[dict[str, pa.Array]] = []
        self._reset()

    def _reset(self) -> None:
        self._rows: dict[str, list] = {name: [] for name in (*TEXT, "at", "direction", "answered", "duration",
                                                               "sip", "attestation")}

    def __len__(self) -> int:
        return sum(len(chunk["at"]) for chunk in self._frozen) + len(self._rows["at"])

    def append(self, cdr: Cdr) -> None:
        rows = self._rows
        for name in TEXT:
            rows[name].append(getattr(cdr, name))
        delta = cdr.started_at - EPOCH
        rows["at"].append((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
        rows["direction"].append(DIRECTIONS.index(cdr.direction))
        rows["answered"].append(cdr.answered)
        rows["duration"].append(cdr.duration_s)
        rows["sip"].append(NO_SIP if cdr.sip_code is None else cdr.sip_code)
        rows["attestation"].append(0 if cdr.attestation is None else 1 + ATTESTATIONS.index(cdr.attestation))
        if len(rows["at"]) >= CHUNK:
            self._freeze()

    def _freeze(self) -> None:
        rows = self._rows
        if not rows["at"]:
            return
        chunk = {name: pa.array(rows[name], type=pa.large_string()) for name in TEXT}
        chunk["at"] = pa.array(rows["at"], type=pa.int64())
        chunk["direction"] = pa.array(rows["direction"], type=pa.int8())
        chunk["answered"] = pa.array(rows["answered"], type=pa.bool_())
        chunk["duration"] = pa.array(rows["duration"], type=pa.float64())
        chunk["sip"] = pa.array(rows["sip"], type=pa.int16())
        chunk["attestation"] = pa.array(rows["attestation"], type=pa.int8())
        self._frozen.append(chunk)
        self._reset()

    def ordered(self) -> Iterator[Cdr]:
        """Every record, by `started_at` (stable)."""
        self._freeze()
        if not self._frozen:
            return
        columns = {name: pa.concat_arrays([chunk[name] for chunk in self._frozen]) for name in self._frozen[0]}
        self._frozen = []
        order = np.argsort(columns["at"].to_numpy(), kind="stable")
        for start in range(0, len(order), CHUNK):
            take = pa.array(order[start:start + CHUNK])
            part = {name: column.take(take).to_pylist() for name, column in columns.items()}
            for call_id, caller_id, destination, tenant, campaign, carrier, at, direction, answered, duration, \
                    sip, attestation in zip(*(part[name] for name in (*TEXT, "at", "direction", "answered",
                                                                      "duration", "sip", "attestation")),
                                            strict=True):
                yield Cdr(
                    call_id=call_id, started_at=EPOCH + timedelta(microseconds=at),
                    direction=DIRECTIONS[direction], caller_id=caller_id, destination=destination,
                    answered=answered, duration_s=duration, sip_code=None if sip == NO_SIP else sip,
                    attestation=None if attestation == 0 else ATTESTATIONS[attestation - 1],
                    tenant=tenant, campaign=campaign, carrier=carrier,
                )
