"""spoof.national_cli_from_abroad (rules/packs/spoof.py) and its countries' table, on hand-built records."""

import pytest
from engine_helpers import cdr, decisions, run

from rules.packs.spoof import load_table

AT = "2026-12-01T09:00:00Z"
# A number of each type the table names, per country: (caller ID, destination in that country).
LANDLINES = {"GB": ("+442071234567", "+442079460000"), "BE": ("+3222345678", "+3223456789"),
             "IT": ("+390612345678", "+390287654321"), "DE": ("+4930123456", "+4989123456")}
MOBILES = {"GB": "+447400123456", "BE": "+32470123456", "IT": "+393123456789", "DE": "+4915112345678"}


def alerts(*records):
    return decisions(run(list(records)), "spoof.national_cli_from_abroad")


def test_the_table_names_the_four_countries_with_sources():
    table = load_table()
    assert set(table) == {"GB", "BE", "IT", "DE"}
    assert all(country.source for country in table.values())


@pytest.mark.parametrize("country", sorted(LANDLINES))
def test_a_national_landline_from_abroad_alerts_scoped_to_the_destination_country(country):
    cli, destination = LANDLINES[country]
    got = alerts(cdr(cli, destination, at=AT, ingress_country="NL"))
    assert [(d["caller_id"], d["scope"]) for d in got] == [(cli, {"destination_country": country})]
    # Entering in the destination's own country, or no ingress country: nothing.
    assert alerts(cdr(cli, destination, at=AT, ingress_country=country)) == []
    assert alerts(cdr(cli, destination, at=AT)) == []
    # The same CLI calling another country is not this rule's business.
    assert alerts(cdr(cli, "+33142000000", at=AT, ingress_country="NL")) == []


@pytest.mark.parametrize(("country", "fires"), [("GB", False), ("BE", True), ("IT", True), ("DE", False)])
def test_mobile_numbers_only_where_the_table_says_so(country, fires):
    destination = LANDLINES[country][1]
    got = alerts(cdr(MOBILES[country], destination, at=AT, ingress_country="US"))
    assert bool(got) is fires


def test_records_without_ingress_country_are_counted_in_the_summary():
    from cidwatch.replay import summary_lines
    from rules.engine import Engine
    from rules.pack import load_packs

    result = run([cdr(LANDLINES["GB"][0], LANDLINES["GB"][1], at=AT),
                  cdr(LANDLINES["GB"][0], LANDLINES["GB"][1], at=AT, ingress_country="FR")])
    lines = summary_lines(result, None)
    assert any(line.startswith("without ingress_country: 1 of 2 outbound calls") for line in lines), lines
    assert Engine(load_packs()).needs == ["ingress_country", "purpose"]
