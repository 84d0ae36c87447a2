"""The key of the destination hashes (`fr.telemarketing_frequency`'s consumers, spam risk's destinations).

It is a secret like a broker password: whoever holds it can test a phone number against the hashes in
state and decisions. So it comes from a file (`--hash-key-file`, `CIDWATCH_HASH_KEY_FILE`) or the
environment (`CIDWATCH_HASH_KEY`), never from a flag, which every user of the machine can read in the
process list. The worker and replay read it the same way: the same key gives the same decisions.
"""

from __future__ import annotations

import argparse
import os

from cidwatch.kafka_options import SecretRefused
from streams.settings import read_secret


def add_hash_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hash-key-file", metavar="FILE", default=None,
                        help="file holding the key of the hashes of destinations kept in state and named in "
                        "decisions; the worker and replay need the same key to decide the same (env "
                        "CIDWATCH_HASH_KEY_FILE, or the key itself in CIDWATCH_HASH_KEY); the worker needs one, replay "
                        "without one hashes unkeyed")
    parser.add_argument("--hash-key", action=SecretRefused, help=argparse.SUPPRESS)


def hash_key(args: argparse.Namespace) -> str:
    """The key from the flag's file, else the environment; "" when none is set."""
    return read_secret(os.environ, {"hash_key_file": args.hash_key_file}, "hash_key_file", "CIDWATCH_HASH_KEY") or ""
