"""The real samples (fixtures/adapters/samples/, provenance in SOURCES.md) convert without a reject.

The files are byte-for-byte copies; their digests are pinned here so an accidental edit (an editor
stripping a trailing space, a newline added at the end of the one-line JSON) fails loudly.
"""

from __future__ import annotations

import hashlib

import pytest
from adapter_helpers import FIXTURES, assert_canonical, case_profile, load_cases

from streams.adapters import detect_format, read_source

SAMPLES = FIXTURES / "samples"
SAMPLE_CASES = {case["input"].removeprefix("samples/"): case for case in load_cases()
                if case["input"].startswith("samples/")}
SAMPLE_FILES = sorted(path.name for path in SAMPLES.iterdir() if path.name != "SOURCES.md")
# name: (bytes, sha256), as copied from the sources named in SOURCES.md.
DIGESTS: dict[str, tuple[int, str]] = {
    "asterisk_master_csv__asterisk-testsuite_self_test.csv":
        (334, "15f3e6cb2e22665b271f0e3b300c028f1e3b26e913253dc652249d92a4d3732e"),
    "asterisk_master_csv__cdrcsv-report-generator_smallcdr_pseudonymised.csv":
        (721, "3edc8d7625e48fc0a7750cca19635f407d593c277e973e8d8a55c4edf65fbbeb"),
    "freeswitch_cdr_csv__example_template__raspberry-pi-maker_cdr_basic.csv":
        (833, "fe4862c0a58f2d2ced4d2b5e39060b59f6bbb3c153e4822b8f76828577e9aa51"),
    "freeswitch_json_cdr__cgrates_fscdr_test_2015_unformatted.json":
        (11334, "b234caa5a08a2ec31dc1e09585138ea570c2fea63bb8c5f10b08f8ed05e2d90d"),
    "freeswitch_json_cdr__cgrates_fscdr_test_2018_formatted.json":
        (12748, "7bc77b7ce0330b19441914e2babe541b232476ff5431f7066b8cc55ac3ad957d"),
    "kamailio_acc_syslog__altanai_blockchain_webrtc_voip.log":
        (199, "18c9432cd18cacff7f1ac87a20664bc67b9b04103e08f41718575876d760f8cc"),
    "opensips_acc_db_flatstore__cgrates_acc_cdrs.txt":
        (473, "6418f8957fabd5e98086651ef7d0dc41b44515f944a7293697f825ebe8406af6"),
    "opensips_acc_db_flatstore__cgrates_missed_calls.txt":
        (404, "1846b9feb0667d25d7470601692d4c3a0eac1ea3eb079cb9c993fceb7c263d40"),
    "twilio_call_list_page__twilio-python_2017_read_full_response_failed_sip.json":
        (2309, "ad6016486105b629a2e2bdb5a225d5e60b46daa50ddcd7fa5a6a35d27aebdab1"),
    "twilio_call_list_page__twilio-python_read_full_page1_response.json":
        (7495, "d5bdcc7ba844d86494a8169b3e0ddc4ec3760d31219a67021daf5885b344c91e"),
    "twilio_call_resource__twilio-python_fetch_response.json":
        (3034, "8577a1e48fea425fa0a36ce1a6b5f93273c05470b13f351bcb5321c5bb8b24e0"),
}


def test_provenance_travels_with_the_samples() -> None:
    sources = (SAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    for name in SAMPLE_FILES:
        assert name in sources, f"{name} has no provenance entry in SOURCES.md"


def test_every_sample_has_a_golden_case() -> None:
    assert sorted(SAMPLE_CASES) == SAMPLE_FILES


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_is_the_unedited_copy(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == DIGESTS[name]


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_converts_without_reject(name: str) -> None:
    case = SAMPLE_CASES[name]
    items = list(read_source(SAMPLES / name, case["format"], case_profile(case)))
    assert items, name
    assert [item.reject for item in items if item.reject] == []
    for item in items:
        if item.record is not None:
            assert_canonical(item)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_format_is_detected(name: str) -> None:
    assert detect_format(SAMPLES / name) == SAMPLE_CASES[name]["format"]

