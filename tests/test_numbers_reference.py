"""The classification's fast paths give phonenumbers' answers on 100,000+ numbers.

Numbers cover every region and number type phonenumbers knows (and its non-geographic codes), with
neighbours of each example number (mostly valid), broken variants (invalid) and separator variants.
"""

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from rules import numbers
from rules.numbers import classify, classify_reference, strip_separators

TYPES = [v for k, v in vars(PhoneNumberType).items() if k.isupper() and isinstance(v, int)]


def example_numbers() -> list[phonenumbers.PhoneNumber]:
    examples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in TYPES:
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is not None:
                examples.append(example)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            examples.append(example)
    return examples


def variants(example: phonenumbers.PhoneNumber, rng: random.Random) -> list[str]:
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    code = str(example.country_code)
    national = e164[1 + len(code):]
    out = [e164, phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)]
    for _ in range(40):  # neighbours: same length and prefix, last digits changed
        tail = "".join(rng.choice("0123456789") for _ in range(min(3, len(national))))
        out.append(f"+{code}{national[:-len(tail)]}{tail}")
    neighbour = out[-1]
    out += [
        f"+{code} {national[:3]} {national[3:]}", f"+{code}-{national[:3]}-{national[3:]}",
        f"+{code}.{national[:2]}.{national[2:]}", f"+{code} ({national[:3]}) {national[3:]}",
        f"+{code}0{national}", e164[:-1], e164 + "7", e164.replace("+", ""), f"00{code}{national}",
        e164[:4] + "ABC", " " + neighbour + " ", e164 + "#", f"+{code}{national}{national}",
    ]
    return out


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    rng = random.Random(2026)
    found = []
    examples = example_numbers()
    while len(found) < 100_000:
        for example in examples:
            found.extend(variants(example, rng))
    return found


def test_corpus_covers_everything_phonenumbers_knows(corpus):
    assert len(corpus) >= 100_000
    infos = [classify_reference(n) for n in corpus]
    assert sum(i.valid for i in infos) >= len(corpus) / 2
    regions = {i.region for i in infos if i.valid}
    assert set(phonenumbers.SUPPORTED_REGIONS) - regions <= {"KP", "AQ"} or len(regions) >= 240
    assert {i.number_type for i in infos if i.valid} >= {"FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE",
                                                         "SHARED_COST", "VOIP", "PERSONAL_NUMBER", "PAGER",
                                                         "UAN", "VOICEMAIL", "FIXED_LINE_OR_MOBILE"}


def test_cached_path_equals_phonenumbers(corpus):
    numbers._classify_stripped.cache_clear()
    for raw in corpus:
        assert classify(raw) == classify_reference(raw), raw
        assert classify(raw) == classify_reference(raw), raw  # second call served from the cache


def test_reference_is_phonenumbers_definition_of_e164(corpus):
    for raw in corpus[::7]:
        info = classify_reference(raw)
        stripped = strip_separators(raw)
        try:
            parsed = phonenumbers.parse(stripped, None)
            e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
            expected = (stripped.startswith("+") and stripped[1:].isdigit() and phonenumbers.is_valid_number(parsed)
                        and e164 == stripped)
        except phonenumbers.NumberParseException:
            expected = False
        assert info.valid is expected, raw
        if expected:
            assert info.e164 == e164
            assert info.region == phonenumbers.region_code_for_number(parsed)
            assert getattr(PhoneNumberType, info.number_type) == phonenumbers.number_type(parsed)


def test_validity_alone_equals_the_reference(corpus):
    """`valid_calling_code` (what `Call.destination_is` asks) gives the reference's validity and code."""
    numbers.valid_calling_code.cache_clear()
    for raw in corpus:
        info = classify_reference(raw)
        assert numbers.valid_calling_code(raw) == (info.calling_code if info.valid else None), raw


def test_only_plus61_prefixes_can_be_australian(corpus):
    """The engine skips parsing destinations that cannot matter; calling codes are prefix-free."""
    for raw in corpus:
        info = classify_reference(raw)
        if info.valid and info.calling_code == 61:
            assert strip_separators(raw).startswith("+61"), raw


@pytest.mark.parametrize(("raw", "e164"), [("+33 1 23 45 67 89", "+33123456789"), ("+1 (800) 555-0100", "+18005550100"),
                                           ("+44.20.7183.8750", "+442071838750")])
def test_separators_normalise(raw, e164):
    assert classify(raw).e164 == e164


@pytest.mark.parametrize("raw", ["+4402071838750", "+1-800-FLOWERS", "0207 183 8750", "anonymous", "",
                                 "+447700900123", "+33 1 23 45 67 8", "++33123456789"])
def test_not_valid_e164(raw):
    assert classify(raw).valid is False and classify(raw).e164 is None


def test_flags():
    assert classify("+18885550199").nanp_toll_free and classify("+18335550199").nanp_toll_free
    assert not classify("+18225550199").nanp_toll_free  # reserved, not in service
    assert classify("+33947512345").fr_npv and classify("+33162123456").fr_npv
    assert not classify("+33946123456").fr_npv
    assert classify("+448721234567").uk_prohibited and classify("+449091234567").uk_prohibited
    assert classify("+61131234").au_receive_only and classify("+611900123456").au_receive_only
    assert not classify("+61291234567").au_receive_only
