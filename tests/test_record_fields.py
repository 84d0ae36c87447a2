"""The optional record fields `purpose` and `ingress_country`, and the inventory's `campaigns:` map."""

import pytest

from cidwatch.cdr_table import CdrTable
from rules.cdr import CdrError, parse_cdr
from rules.inventory import InventoryError, load_inventory

BASE = {"call_id": "c1", "started_at": "2026-05-12T09:00:00Z", "caller_id": "+33142000000",
        "destination": "+33612345678"}


def test_purpose_and_ingress_country_are_read_normalised_and_carried_through():
    cdr = parse_cdr({**BASE, "purpose": " Telemarketing", "ingress_country": "nl"})
    assert (cdr.purpose, cdr.ingress_country) == ("telemarketing", "NL")
    assert parse_cdr(cdr.to_dict()) == cdr
    table = CdrTable()
    table.append(cdr)
    assert list(table.ordered()) == [cdr]
    assert parse_cdr(BASE).purpose is None and parse_cdr(BASE).ingress_country is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("purpose", "marketing", "must be one of telemarketing, automated, service, personal, got 'marketing'"),
    ("purpose", ["telemarketing"], "expected a string, got a JSON array"),
    ("ingress_country", "FRA", "expected an ISO 3166 alpha-2 country code"),
    ("ingress_country", "F1", "expected an ISO 3166 alpha-2 country code"),
])
def test_bad_values_are_rejected_naming_the_field(field, value, reason):
    with pytest.raises(CdrError) as caught:
        parse_cdr({**BASE, field: value})
    assert caught.value.field == field and reason in caught.value.reason


def test_inventory_campaigns_map(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("numbers:\n  - {number: '+33142000000', source: claimed}\n"
                    "campaigns:\n  spring: Telemarketing\n  robo: automated\n", encoding="utf-8")
    assert dict(load_inventory(path).campaigns) == {"spring": "telemarketing", "robo": "automated"}
    path.write_text("numbers: []\ncampaigns:\n  spring: cold-calls\n", encoding="utf-8")
    with pytest.raises(InventoryError, match=r"campaigns: 'spring': purpose must be one of"):
        load_inventory(path)
    path.write_text("numbers: []\ncampaign:\n  spring: telemarketing\n", encoding="utf-8")
    with pytest.raises(InventoryError, match=r"unknown section\(s\) campaign"):
        load_inventory(path)


def test_inventory_topic_carries_the_campaigns():
    from datetime import UTC, datetime

    from rules.inventory import inventory_from_rows
    from streams.inventory_topic import decode, encode

    inventory = inventory_from_rows([{"number": "+33142000000", "source": "claimed"}], "t",
                                    campaigns={"spring": "telemarketing"})
    assert dict(decode(encode(inventory, datetime(2026, 5, 1, tzinfo=UTC)), "topic").campaigns) == {
        "spring": "telemarketing"}
