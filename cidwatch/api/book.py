"""What the check API knows and how it answers: the blocks in force and the inventory, in memory.

Pure (no I/O, no clock of its own): the follower feeds it records, the server asks it questions,
and the unit tests do both without a broker. The blocks are folded by `cidwatch.blocks.BlockTable`,
the same fold `cidwatch blocks list` uses, so the API and the command agree on the same records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cidwatch.blocks import BlockTable, describe_block
from rules.cdr import CdrError, iso_utc, normal_purpose
from rules.decision import scope_applies
from rules.inventory import Inventory, InventoryError
from rules.numbers import NumberInfo, classify
from streams.inventory_topic import decode as decode_inventory

# The fields of the answers (OpenAPI lists them from here: cidwatch/api/openapi.py).
CHECK_FIELDS = ("allowed", "cli", "tenant", "destination_country", "purpose", "blocks", "authorised", "checked_at")
BLOCK_FIELDS = ("cli", "tenant", "rule", "scope", "since", "until", "message", "runbook", "decision_id")


class BadRequest(ValueError):
    """A question the API cannot answer as asked: the message names the parameter and says why."""


@dataclass
class Book:
    """The blocks in force and the inventory, as read from the topics so far."""

    runbook_base_url: str = ""
    table: BlockTable = field(default_factory=BlockTable)
    inventory: Inventory | None = None
    inventory_error: str | None = None  # why the last inventory record was not usable

    def apply_block(self, key: bytes | None, value: bytes | None) -> None:
        self.table.apply(key, value)

    def apply_inventory(self, value: bytes | None, where: str) -> None:
        """The latest inventory record replaces the inventory (a null withdraws it); an unusable one is
        ignored, as the workers ignore it, and the reason kept for /readyz."""
        try:
            self.inventory = decode_inventory(value, where)
            self.inventory_error = None
        except (InventoryError, ValueError) as exc:
            self.inventory_error = f"ignored unusable inventory at {where}: {exc}"

    # -- answers ----------------------------------------------------------------------------

    def check(self, cli: str | None, tenant: str | None, destination: str | None, now: datetime,
              purpose: str | None = None) -> dict[str, Any]:
        """The answer of GET /v1/check: may `cli` be presented now (on a call to `destination`, made for
        `purpose`)?

        `allowed` is false when a block in force on the caller ID covers the call: an unscoped block
        always; a scoped one (e.g. `au.cli_not_permitted` on calls to Australia, `fr.automated_not_npv` on
        automated calls) when the destination and the purpose are in its scope, or are not given.
        `authorised` says whether the inventory lists the number for the tenant (null without an
        inventory): it does not change `allowed`, which is exactly what the blocks topic says, but a
        dialer should not present an unauthorised number.
        """
        number = _number("cli", cli)
        dest = None if destination in (None, "") else _number_info("destination", destination)
        why = None if purpose in (None, "") else _purpose(purpose)
        e164 = number.e164
        assert e164 is not None
        applying = [block for block in self.table.for_cli(e164)
                    if scope_applies(block.get("scope") or {}, dest, why)]
        return {
            "allowed": not applying,
            "cli": e164,
            "tenant": tenant,
            "destination_country": None if dest is None else dest.region,
            "purpose": why,
            "blocks": [self.describe(block) for block in applying],
            "authorised": None if self.inventory is None else self.inventory.authorises(e164, tenant),
            "checked_at": iso_utc(now),
        }

    def blocks(self, tenant: str | None, rule: str | None) -> list[dict[str, Any]]:
        """The answer of GET /v1/blocks: the blocks in force (one tenant's, one rule's), in key order."""
        return [self.describe(block) for block in self.table.select(tenant or None, rule or None)]

    def describe(self, block: dict[str, Any]) -> dict[str, Any]:
        """One block as the API shows it: as `cidwatch blocks list --json` does."""
        return describe_block(block, self.runbook_base_url)


def _number_info(name: str, raw: str) -> NumberInfo:
    if raw[:1] == " ":
        # An unencoded "+" in a query string arrives as a space (form encoding): dialplans often write
        # `cli=+33...` as is, and a leading space can mean nothing else in an E.164 number.
        raw = "+" + raw[1:]
    info = classify(raw)
    if not info.valid or info.e164 is None:
        raise BadRequest(f"{name}: {raw[:64]!r} is not a valid E.164 number (write it as +<country code><number>)")
    return info


def _purpose(raw: str) -> str:
    try:
        return normal_purpose(raw)
    except CdrError as exc:
        raise BadRequest(f"purpose: {exc.reason}") from None


def _number(name: str, raw: str | None) -> NumberInfo:
    if raw is None or raw == "":
        raise BadRequest(f"{name}: required, the caller ID in E.164 (e.g. {name}=%2B33140000001)")
    return _number_info(name, raw)
