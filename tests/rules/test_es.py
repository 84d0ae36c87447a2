"""es.mobile_cli_commercial (rules/packs/es.py), on hand-built records."""

from engine_helpers import cdr, decisions, run

AT = "2026-05-12T09:00:00Z"


def blocks(*records):
    return decisions(run(list(records)), "es.mobile_cli_commercial")


def test_spanish_mobile_cli_on_telemarketing_or_service_calls_is_blocked():
    got = blocks(cdr("+34612345678", "+34912345678", at=AT, purpose="telemarketing"),
                 cdr("+34712345678", "+34912345678", at=AT, purpose="service"))
    assert [(d["caller_id"], d["kind"], d["until"]) for d in got] == [
        ("+34612345678", "block", None), ("+34712345678", "block", None)]
    assert got[0]["scope"] == {"purpose": "telemarketing,service"} and "TDF/149/2025" in got[0]["source"]


def test_once_per_caller_id_and_not_for_other_purposes_or_numbers():
    assert len(blocks(*[cdr("+34612345678", at=AT, purpose="telemarketing") for _ in range(3)])) == 1
    assert blocks(cdr("+34612345678", at=AT, purpose="personal"), cdr("+34612345678", at=AT, purpose="automated"),
                  cdr("+34612345678", at=AT)) == []
    assert blocks(cdr("+34912345678", at=AT, purpose="telemarketing")) == []  # geographic
    assert blocks(cdr("+33612345678", at=AT, purpose="telemarketing")) == []  # French mobile
