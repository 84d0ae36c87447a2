"""The `cidwatch` command line: one sub-command per module, each registering its own parser.

Every flag that has an environment equivalent says so in `--help`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from rules.errors import CidwatchError

# Modules that define `register(subparsers)`; each adds its sub-commands and sets `func` on them.
COMMAND_MODULES = (
    "cidwatch.replay_cmd",
    "cidwatch.rules_cmd",
    "cidwatch.dev.broker", "cidwatch.topics_cmd", "cidwatch.produce", "cidwatch.tail", "cidwatch.blocks",
    "cidwatch.api.server", "cidwatch.history",
    "dashboards.cli",
    "cidwatch.worker_cmd", "cidwatch.inventory_cmd",
    "cidwatch.dev.simulate", "cidwatch.dev.demo",
)


class CliError(CidwatchError):
    """A user-facing error of the command line itself (a bad flag, a missing file): like every
    CidwatchError, printed as one line without a traceback, exit status 2."""


def installed_version() -> str:
    """The installed distribution's version (pyproject.toml's, through the package metadata)."""
    try:
        return version("cidwatch")
    except PackageNotFoundError:  # source on the path but not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cidwatch",
        description="Caller-ID compliance monitor: rules over call-detail records, in replay or in a stream.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CidwatchError as exc:
        print(f"cidwatch: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`cidwatch tail | head`): say so once; point stdout at /dev/null so the
        # interpreter's flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("cidwatch: error: standard output was closed (broken pipe); output stopped", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
