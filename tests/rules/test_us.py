"""us.tollfree_to_tollfree, us.cnam_missing and us.calling_hours (rules/packs/us.py), on hand-built records."""

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


# -- us.calling_hours -----------------------------------------------------------------------------------

def calling_hours(destination, at, purpose="telemarketing"):
    return decisions(run([cdr("+12125550143", destination, at=at, purpose=purpose)]), "us.calling_hours")


def test_calling_hours_in_the_called_partys_zone():
    new_york = "+12125550123"  # America/New_York, UTC-4 in May
    assert calling_hours(new_york, "2026-05-12T11:59:59Z")  # 07:59:59
    assert not calling_hours(new_york, "2026-05-12T12:00:00Z")  # 08:00
    assert not calling_hours(new_york, "2026-05-13T01:00:00Z")  # 21:00
    assert calling_hours(new_york, "2026-05-13T01:00:01Z")  # 21:00:01
    assert not calling_hours(new_york, "2026-05-13T01:30:00Z", purpose="service")


def test_an_area_code_spanning_two_zones_must_be_inside_hours_in_both():
    # 605: America/Denver (UTC-6 in May) and America/North_Dakota/Center (UTC-5), by phonenumbers' metadata.
    south_dakota = "+16055550123"
    # 13:30 UTC: 08:30 Central but 07:30 Mountain.
    got = calling_hours(south_dakota, "2026-05-12T13:30:00Z")
    assert len(got) == 1 and "America/Denver" in got[0]["message"]
    assert not calling_hours(south_dakota, "2026-05-12T14:00:00Z")  # 09:00 and 08:00
    # 02:30 UTC: 20:30 Mountain but 21:30 Central.
    assert "America/North_Dakota/Center" in calling_hours(south_dakota, "2026-05-13T02:30:00Z")[0]["message"]


def test_calling_hours_apply_to_canadian_numbers_and_not_elsewhere():
    assert calling_hours("+13065550123", "2026-05-12T12:00:00Z")  # Regina, UTC-6: 06:00
    assert not calling_hours("+442071234567", "2026-05-12T03:00:00Z")
