"""Inputs as they sit on a switch: rotated gzip files, canonical files under --format auto, headers that
lack a required column, and the profile keys of the stock variants (docs/adapters.md)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from adapter_helpers import FIXTURES, REPO

from streams.adapters import convert_raw, read_source
from streams.adapters.profile import ProfileError, load_profile, profile_from_dict

CANONICAL = [
    {"call_id": "c1", "started_at": "2024-03-12T15:00:00Z", "caller_id": "+18005550100",
     "destination": "+18885550199", "answered": True, "duration_s": 42},
]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cidwatch", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def gzipped(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


@pytest.mark.parametrize(("fmt", "name", "profile"), [
    ("asterisk", "asterisk/multiparty.csv", "asterisk/multiparty.profile.yaml"),
    ("freeswitch-json", "freeswitch-json/encoded_originate.jsonl", "freeswitch-json/golden.profile.yaml"),
    ("kamailio-acc", "kamailio-acc/syslog_mixed.log", "kamailio-acc/syslog_mixed.profile.yaml"),
    ("twilio", "twilio/child_legs.json", None),
])
def test_a_gzip_export_converts_as_the_plain_file(tmp_path: Path, fmt: str, name: str, profile: str | None) -> None:
    chosen = load_profile(FIXTURES / profile if profile else None)
    plain = list(read_source(FIXTURES / name, fmt, chosen))
    packed = list(read_source(gzipped(FIXTURES / name, tmp_path / "export.1.gz"), fmt, chosen))
    assert packed == plain and any(item.record for item in plain)


def write_canonical(tmp_path: Path, kind: str) -> Path:
    frame = pd.DataFrame(CANONICAL)
    path = tmp_path / f"cdrs.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in CANONICAL), encoding="utf-8")
    elif kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_replay_reads_canonical_files_under_auto_and_gzip(tmp_path: Path, kind: str, packed: bool) -> None:
    path = write_canonical(tmp_path, kind)
    if packed:
        path = gzipped(path, tmp_path / f"{path.name}.gz")
    for fmt in ("auto", "canonical"):
        out = tmp_path / f"out-{fmt}"
        proc = cli("replay", path, "--format", fmt, "--out", out)
        assert proc.returncode == 0, proc.stderr
        rules = [json.loads(line)["rule"] for line in (out / "decisions.jsonl").read_text().splitlines()]
        assert rules == ["us.tollfree_to_tollfree"], (fmt, proc.stdout)


def test_a_canonical_csv_header_without_a_required_column_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "cdrs.csv"
    path.write_text("call_id,started_at,destination\nc1,2024-03-12T15:00:00Z,+18885550199\n", encoding="utf-8")
    proc = cli("replay", path, "--out", tmp_path / "out")
    assert proc.returncode != 0
    assert "line 1: the header lacks the required column caller_id" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_an_acc_header_without_a_required_column_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "acc.csv"
    path.write_text("method,from_tag,to_tag,sip_code,sip_reason,time,src_user,dst_user\n"
                    "INVITE,a,b,200,OK,1710237606,+33145678901,+33612345678\n", encoding="utf-8")
    proc = cli("replay", path, "--format", "kamailio-acc", "--out", tmp_path / "out")
    assert proc.returncode != 0
    assert "line 1: the header lacks the required column callid" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("data", "message"), [
    ({"asterisk": {"newcdrcolumns": "yes"}}, "asterisk.newcdrcolumns: expected true or false"),
    ({"asterisk": {"merge_parties": "callid"}}, "asterisk.merge_parties: must be one of uniqueid, linkedid, none"),
    ({"freeswitch": {"encoded_values": 1}}, "freeswitch.encoded_values: expected true or false"),
    ({"kamailio": {"inbound_source_ips": ["carrier"]}}, "kamailio.inbound_source_ips: expected IP addresses"),
    ({"kamailio": {"inbound_to_prefixes": "+331"}}, "kamailio.inbound_to_prefixes: expected a list"),
])
def test_variant_keys_are_validated(data: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("+", r"\+")):
        profile_from_dict(data)


def test_freeswitch_json_values_are_left_alone_when_encode_values_is_off() -> None:
    """With encode-values=false a literal '%2B' in a value is what the channel held."""
    document = (FIXTURES / "freeswitch-json/encoded_originate.jsonl").read_text().splitlines()[0]
    (on,) = convert_raw("freeswitch-json", document.encode(), profile_from_dict({"default_region": "FR"}))
    off = profile_from_dict({"default_region": "FR", "freeswitch": {"encoded_values": False}})
    (raw,) = convert_raw("freeswitch-json", document.encode(), off)
    assert on.record is not None and on.record["caller_id"] == "+18005550100"
    assert raw.record is not None and raw.record["caller_id"] == "%2B18005550100"
