"""`cidwatch replay`: run the rules over CDR files and write decisions, rejects and a summary."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import tzinfo
from pathlib import Path

from cidwatch.cli import CliError
from cidwatch.hash_key import add_hash_key_arguments, hash_key
from cidwatch.inputs import InputError, RawRecord, require_file
from cidwatch.replay import canonical_records, replay, replay_files, summary_lines, write_outputs
from rules.cdr import CdrError, zone
from rules.engine import Engine
from rules.inventory import Inventory, InventoryError, load_inventory
from rules.pack import PackError, RulePack, load_packs

# The README's worked example ships in the package (make_examples.py writes it), so an installed
# `cidwatch replay --example` runs it without a checkout.
EXAMPLES = Path(__file__).parent / "examples"
EXAMPLE_CDRS, EXAMPLE_INVENTORY = EXAMPLES / "cdrs.jsonl", EXAMPLES / "inventory.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run the rules over historical CDR files (no broker)",
        description="Run the rule engine over CDR files, in started_at order, and write DIR/decisions.jsonl, "
        "DIR/rejects.jsonl and DIR/summary.csv.",
    )
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="CDR files (.jsonl, .csv, .parquet)")
    parser.add_argument("--example", action="store_true",
                        help="replay the example shipped with cidwatch (a day of traffic tripping the rules), with "
                        "its inventory unless --inventory is given; prints where both files are")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    add_engine_arguments(parser)
    parser.add_argument("--assume-tz", metavar="TZ", help="IANA zone for timestamps written without an offset")
    parser.add_argument("--format", default="canonical", metavar="NAME",
                        help="input format: canonical (default, by extension), auto, or an adapter name")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="adapter profile (YAML)")
    parser.add_argument("--dedup-hours", type=float, default=48.0,
                        help="how long a call_id is remembered for de-duplication, in event time (default 48)")
    parser.add_argument("--report", action="store_true", help="also write DIR/report.html (plots, embedded)")
    parser.add_argument("--workers", type=int, metavar="N", default=None,
                        help="processes that read and judge a large input (env CIDWATCH_REPLAY_WORKERS; default: "
                        "the cores available)")
    parser.set_defaults(func=run)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds an Engine."""
    parser.add_argument("--inventory", type=Path, metavar="FILE", default=os.environ.get("CIDWATCH_INVENTORY"),
                        help="number inventory, YAML or CSV (env CIDWATCH_INVENTORY)")
    parser.add_argument("--rules", type=Path, metavar="DIR", default=os.environ.get("CIDWATCH_RULES"),
                        help="directory of rule packs (env CIDWATCH_RULES; default: the shipped packs)")
    parser.add_argument("--default-region", metavar="CC", default=os.environ.get("CIDWATCH_DEFAULT_REGION"),
                        help="region for destinations written in national format, e.g. FR "
                        "(env CIDWATCH_DEFAULT_REGION)")
    add_hash_key_arguments(parser)


def build_engine(args: argparse.Namespace) -> Engine:
    return Engine(load_pack_arg(args.rules), load_inventory_arg(args.inventory), args.default_region,
                  dedup_seconds=int(getattr(args, "dedup_hours", 48.0) * 3600),
                  hash_key=(hash_key(args) if hasattr(args, "hash_key_file") else "").encode())


def load_pack_arg(directory: Path | None) -> RulePack:
    try:
        return load_packs(directory)
    except PackError as exc:
        raise CliError(str(exc)) from exc


def load_inventory_arg(path: Path | None) -> Inventory | None:
    if path is None:
        return None
    try:
        return load_inventory(path)
    except InventoryError as exc:
        raise CliError(str(exc)) from exc


def assume_zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return zone(name)
    except CdrError as exc:
        raise CliError(f"--assume-tz: {exc.reason}") from exc


def writable_folder(out: Path) -> None:
    """Create `--out` (and its parents) and make sure files can be written in it, before a replay that may
    take minutes: a folder that cannot be written is one line now, not a traceback at the end."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CliError(f"--out {out}: cannot write there: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    if args.example:
        if args.inputs:
            raise CliError("--example replays the shipped example: give no INPUT with it")
        args.inputs = [EXAMPLE_CDRS]
        args.inventory = args.inventory or EXAMPLE_INVENTORY
        print(f"example: {EXAMPLE_CDRS} (inventory {args.inventory})")
    elif not args.inputs:
        raise CliError("replay needs an INPUT file (or --example)")
    engine = build_engine(args)
    try:
        for path in args.inputs:
            require_file(path)
    except InputError as exc:
        raise CliError(str(exc)) from exc
    writable_folder(args.out)
    skipped: Counter[str] = Counter()
    assume_tz = assume_zone(args.assume_tz)
    try:  # records are read as the replay goes: memory follows its state, not the input's size
        if args.format == "canonical":
            result = replay_files(args.inputs, engine, assume_tz, workers=args.workers)
        else:
            result = replay(source_records(args.inputs, args.format, args.profile, skipped), engine, assume_tz)
    except InputError as exc:
        raise CliError(str(exc)) from exc
    result.skipped.update(skipped)
    summary = write_outputs(result, args.out)
    if args.report:
        from cidwatch.report import write_report  # matplotlib only when asked for

        print(f"wrote {write_report(result, args.out, summary, inputs=args.inputs, rules_dir=args.rules)}")
    for line in summary_lines(result, engine.inventory):
        print(line)
    print(f"wrote {args.out / 'decisions.jsonl'}, {args.out / 'rejects.jsonl'}, {args.out / 'summary.csv'}")
    if not engine.hash_key:
        # Decisions name consumers by their number's hash (fr.telemarketing_frequency): unkeyed, a hash in
        # these files gives the number back to whoever hashes the numbering plan. Said once they are
        # written, so that bad input keeps its one line.
        print("cidwatch replay: no hash key: destination hashes in --out are unkeyed; give the workers' key "
              "(--hash-key-file, CIDWATCH_HASH_KEY_FILE or CIDWATCH_HASH_KEY) to keep them keyed and decide "
              "as the stream does", file=sys.stderr)
    return 0


def source_records(paths: list[Path], fmt: str, profile_path: Path | None,
                   skipped: Counter[str]) -> Iterator[RawRecord]:
    """Canonical files directly; other formats through their adapter (imported only when asked for)."""
    if fmt == "canonical":
        yield from canonical_records(paths)
        return
    from streams import adapters

    try:
        profile = adapters.load_profile(profile_path)
    except ValueError as exc:  # ProfileError: its message names the file already
        raise CliError(str(exc)) from exc
    for path in paths:
        name = fmt
        if fmt == "auto":
            try:
                name = adapters.detect_format(path, canonical=True)
            except ValueError as exc:
                raise CliError(f"{path}: {exc}") from exc
            print(f"{path}: format {name}")
            if name == "canonical":
                yield from canonical_records([path])
                continue
        elif fmt not in adapters.FORMATS:
            raise CliError(f"--format: unknown format {fmt!r}; known: canonical, auto, {', '.join(adapters.FORMATS)}")
        try:
            items = list(adapters.read_source(path, name, profile))
        except ValueError as exc:  # a file-level error (unreadable archive, header without a required column)
            raise CliError(f"{path}: {exc}") from exc
        for item in items:
            if item.skip is not None:
                skipped[item.skip] += 1
            elif item.reject is not None:
                yield RawRecord(str(path), item.location, None, f"record: {item.reject}")
            else:
                yield RawRecord(str(path), item.location, item.record)
