"""tollfree.international (rules/packs/tollfree.py), on hand-built records."""

from engine_helpers import cdr, rules_of, run


def test_tollfree_international():
    result = run([cdr("+18005550100", "+33612345678")])
    assert rules_of(result) == [("tollfree.international", "alert")]
    assert rules_of(run([cdr("+18005550100", "+14165550100")])) == []  # Canada shares +1
    assert rules_of(run([cdr("+33805123456", "+33612345678")])) == []  # French freephone, national call
