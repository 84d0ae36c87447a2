"""uk.cli_not_permitted (rules/packs/uk.py), on hand-built records."""

import pytest
from engine_helpers import cdr, rules_of, run


@pytest.mark.parametrize(("cli", "fires"), [("+449091234567", True), ("+448701234567", True),
                                            ("+448711234567", True), ("+448731234567", True),
                                            ("+448451234567", False), ("+442071838750", False)])
def test_uk_cli_not_permitted(cli, fires):
    assert (("uk.cli_not_permitted", "block") in rules_of(run([cdr(cli, "+442071838750")]))) is fires
