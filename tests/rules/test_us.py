"""us.tollfree_to_tollfree and us.cnam_missing (rules/packs/us.py), on hand-built records."""

from engine_helpers import OWNED, cdr, decisions, rules_of, run


def test_us_tollfree_to_tollfree():
    result = run([cdr("+1 800 555 0100", "+18885550199"), cdr("+18005550100", "+18335550100")])
    assert rules_of(result) == [("us.tollfree_to_tollfree", "block")]
    assert decisions(result)[0]["scope"] == {"destination_type": "toll_free"}
    assert rules_of(run([cdr("+12125550143", "+18885550199"), cdr("+18005550100", "+12125550143")])) == []


def test_us_cnam_missing():
    assert rules_of(run([cdr("+12125550143", "+13125550100", tenant="acme")], OWNED)) == [
        ("us.cnam_missing", "alert")]
    assert decisions(run([cdr("+12125550143", "+13125550100", tenant="acme")], OWNED))[0]["severity"] == "info"
    assert rules_of(run([cdr("+13125550188", "+13125550100")], OWNED)) == []  # has a CNAM
    assert rules_of(run([cdr("+18005550100", "+13125550100")], OWNED)) == []  # toll-free
