"""`cidwatch worker`: run one Faust worker (also `python -m streams worker`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cidwatch.cli import CliError
from rules.inventory import InventoryError
from rules.pack import PackError
from streams.config import STORES, WorkerConfig
from streams.settings import Settings


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker", help="run a stream worker (Faust)",
        description="Consume CDRs from Kafka, judge them with the rule engine, emit decisions. The broker "
        "comes from CIDWATCH_BROKER (default kafka://127.0.0.1:9092), topic names from CIDWATCH_TOPIC_PREFIX "
        "(default 'cidwatch.').")
    parser.add_argument("--inventory", type=Path, default=_env("CIDWATCH_INVENTORY"), metavar="FILE",
                        help="starting number inventory, YAML or CSV; a push to the inventory topic replaces it "
                        "(env CIDWATCH_INVENTORY)")
    parser.add_argument("--rules", type=Path, default=_env("CIDWATCH_RULES"), metavar="DIR",
                        help="directory of rule packs (env CIDWATCH_RULES; default: the shipped packs)")
    parser.add_argument("--workdir", type=Path, default=Path(_env("CIDWATCH_WORKDIR", ".cache/worker") or "."),
                        metavar="DIR", help="table storage (env CIDWATCH_WORKDIR, default .cache/worker)")
    parser.add_argument("--web-port", type=int, default=int(_env("CIDWATCH_WEB_PORT", "6066") or 6066),
                        metavar="N", help="port of /metrics (env CIDWATCH_WEB_PORT, default 6066)")
    parser.add_argument("--web-host", default=_env("CIDWATCH_WEB_HOST", "127.0.0.1"), metavar="ADDR",
                        help="address the web server binds (env CIDWATCH_WEB_HOST, default 127.0.0.1)")
    parser.add_argument("--store", choices=sorted(STORES), default=_env("CIDWATCH_STORE", "rocksdb"),
                        help="table store: rocksdb for large state, memory for tests (env CIDWATCH_STORE, "
                        "default rocksdb)")
    parser.add_argument("--partitions", type=int, default=int(_env("CIDWATCH_PARTITIONS", "8") or 8), metavar="N",
                        help="partitions of the cdr topic and of the tables (env CIDWATCH_PARTITIONS, default 8)")
    parser.add_argument("--default-region", default=_env("CIDWATCH_DEFAULT_REGION"), metavar="CC",
                        help="region for destinations in national format (env CIDWATCH_DEFAULT_REGION)")
    parser.add_argument("--max-record-bytes", type=int, metavar="N",
                        default=int(_env("CIDWATCH_MAX_RECORD_BYTES", str(256 * 1024)) or 0),
                        help="larger CDR messages go to the DLQ (env CIDWATCH_MAX_RECORD_BYTES, default 262144)")
    parser.add_argument("--dedup-hours", type=float, default=float(_env("CIDWATCH_DEDUP_HOURS", "48") or 48),
                        help="event time a call_id is remembered for (env CIDWATCH_DEDUP_HOURS, default 48)")
    parser.add_argument("--input-format", action="append", default=[], metavar="NAME",
                        help="also read raw.NAME topics of records in that format (repeatable; "
                        "env CIDWATCH_INPUT_FORMATS, comma-separated)")
    parser.add_argument("--profile", type=Path, default=_env("CIDWATCH_PROFILE"), metavar="FILE",
                        help="adapter profile for --input-format (env CIDWATCH_PROFILE)")
    parser.add_argument("--alertmanager-url", default=_env("CIDWATCH_ALERTMANAGER_URL"), metavar="URL",
                        help="post alert and block decisions to this Alertmanager (API v2) "
                        "(env CIDWATCH_ALERTMANAGER_URL; default: no paging)")
    parser.add_argument("--alert-repost", type=float, default=float(_env("CIDWATCH_ALERT_REPOST", "60") or 60),
                        metavar="S", help="seconds between re-posts of firing alerts (env CIDWATCH_ALERT_REPOST, "
                        "default 60)")
    parser.add_argument("--runbook-base-url", default=_env("CIDWATCH_RUNBOOK_BASE_URL", ""), metavar="URL",
                        help="base of the runbook links in alerts, e.g. your repository's web URL "
                        "(env CIDWATCH_RUNBOOK_BASE_URL; default: repository-relative docs/runbooks/...)")
    parser.add_argument("--cli-metrics-limit", type=int, default=int(_env("CIDWATCH_CLI_METRICS_LIMIT", "500") or 500),
                        metavar="N", help="per-caller-ID series for the busiest N CLIs when no inventory bounds "
                        "them (env CIDWATCH_CLI_METRICS_LIMIT, default 500)")
    parser.add_argument("--tick", type=float, default=1.0, metavar="S",
                        help="seconds between wall-clock checks for blocks to lift (default 1)")
    parser.add_argument("--loglevel", default=_env("CIDWATCH_LOGLEVEL", "warning"),
                        help="debug, info, warning (env CIDWATCH_LOGLEVEL, default warning)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    formats = list(args.input_format) or [f for f in (_env("CIDWATCH_INPUT_FORMATS") or "").split(",") if f]
    return WorkerConfig(
        settings=Settings.from_env(), inventory=args.inventory, rules=args.rules, workdir=args.workdir,
        web_port=args.web_port, web_host=args.web_host, store=args.store, partitions=args.partitions,
        default_region=args.default_region, max_record_bytes=args.max_record_bytes, dedup_hours=args.dedup_hours,
        tick_seconds=args.tick, input_formats=tuple(formats), profile=args.profile, loglevel=args.loglevel,
        alertmanager_url=args.alertmanager_url, alert_repost_seconds=args.alert_repost,
        runbook_base_url=args.runbook_base_url, cli_metrics_limit=args.cli_metrics_limit,
    )


def run(args: argparse.Namespace) -> int:
    from streams.app import CidwatchWorker

    config = config_from_args(args)
    try:
        worker = CidwatchWorker(config)
    except (InventoryError, PackError) as exc:
        raise CliError(str(exc)) from exc
    worker.start()
    return 0
