"""au.cli_not_permitted (rules/packs/au.py), on hand-built records."""

from engine_helpers import OWNED, cdr, decisions, rules_of, run


def test_au_receive_only_cli_any_destination():
    for cli in ("+61131234", "+611300123456", "+611800123456", "+611900123456"):
        result = run([cdr(cli, "+33612345678")], OWNED)
        assert ("au.cli_not_permitted", "block") in rules_of(result), cli
        assert decisions(result, "au.cli_not_permitted")[0]["scope"] == {}


def test_au_destination_clause():
    result = run([cdr("+18005550100", "+61291234567")])  # toll-free CLI to Australia, no inventory needed
    assert decisions(result, "au.cli_not_permitted")[0]["scope"] == {"destination_country": "AU"}
    byoc = run([cdr("+61291234567", "+61412345678")], OWNED)  # verified but not claimed/ported
    assert rules_of(byoc) == [("au.cli_not_permitted", "block")]
    assert rules_of(run([cdr("+61291234568", "+61412345678")], OWNED)) == []  # ported: fine
    assert rules_of(run([cdr("+61291234567", "+61412345678")])) == []  # no inventory: clause skipped


def test_au_national_destination_with_default_region():
    result = run([cdr("+18005550100", "02 9123 4567")], default_region="AU")
    assert ("au.cli_not_permitted", "block") in rules_of(result)
    assert rules_of(run([cdr("+18005550100", "02 9123 4567")])) == []  # unclassified without a region
    assert run([cdr("+18005550100", "02 9123 4567")]).counts["unclassified_destinations"] == 1
