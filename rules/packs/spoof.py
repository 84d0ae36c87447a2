"""Spoofing seen from the called country: national caller IDs on calls that entered from abroad."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rules.context import Call
from rules.pack import Rule
from rules.registry import Finding, rule

TABLE = Path(__file__).parent / "tables" / "spoof_countries.yaml"
EITHER = "FIXED_LINE_OR_MOBILE"


@dataclass(frozen=True)
class Country:
    types: frozenset[str]
    source: str

    def covers(self, number_type: str) -> bool:
        if number_type == EITHER:
            return bool(self.types & {"FIXED_LINE", "MOBILE"})
        return number_type in self.types


def load_table(path: Path = TABLE) -> dict[str, Country]:
    """The countries' table (rules/packs/tables/spoof_countries.yaml): region -> number types blocked."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    countries = document.get("countries") if isinstance(document, Mapping) else None
    if not isinstance(countries, Mapping) or not countries:
        raise ValueError(f"{path}: expected a 'countries:' mapping")
    table = {}
    for region, row in countries.items():
        if not isinstance(row, Mapping) or not isinstance(row.get("types"), list) or not row.get("source"):
            raise ValueError(f"{path}: countries.{region}: expected types (a list) and source")
        table[str(region).upper()] = Country(frozenset(map(str, row["types"])), str(row["source"]))
    return table


def _params(params: Mapping[str, Any]) -> dict[str, Country]:
    """`params: {countries: [GB, ...]}` keeps a subset of the table (default: all of it)."""
    unknown = set(params) - {"countries"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: countries")
    table = load_table()
    chosen = params.get("countries")
    if chosen is None:
        return table
    missing = [str(c) for c in chosen if str(c).upper() not in table]
    if missing:
        raise ValueError(f"countries: not in {TABLE.name}: {', '.join(missing)}")
    return {str(c).upper(): table[str(c).upper()] for c in chosen}


@rule("spoof.national_cli_from_abroad", "alert", ("utc_day", "local_day"),
      needs=("ingress_country",), params=_params)
def national_cli_from_abroad(call: Call, rule: Rule) -> Finding | None:
    """A call that entered the network outside the destination's country, presenting a number of that
    country of a type its networks block from abroad (scoped to the destination country)."""
    ingress = call.cdr.ingress_country
    cli = call.cli
    if ingress is None or cli.region is None:
        return None
    countries: dict[str, Country] = rule.config
    country = countries.get(cli.region)
    if country is None or ingress == cli.region or not country.covers(cli.number_type):
        return None
    if not call.destination_is(cli.calling_code or 0) or call.destination.region != cli.region:
        return None
    number, region = call.subject, cli.region
    kind = cli.number_type.lower().replace("_", " ")
    return Finding(lambda _t: f"Caller ID {number} ({region} {kind}) was presented on a call to {region} that "
                              f"entered the network in {ingress}: {region}'s networks block or strip such calls.",
                   scope={"destination_country": region})
