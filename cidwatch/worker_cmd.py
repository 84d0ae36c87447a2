"""`cidwatch worker`: run one Faust worker (also `python -m streams worker`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cidwatch.cli import CliError
from cidwatch.hash_key import add_hash_key_arguments, hash_key
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from rules.inventory import InventoryError
from rules.pack import PackError
from streams.config import STORES, WorkerConfig

DEFAULTS = WorkerConfig()


def _env(name: str, default: object) -> str | None:
    """The environment's value, else the default (as text, for argparse's `type` to convert)."""
    value = os.environ.get(name)
    if value is not None:
        return value
    return None if default is None else str(default)


def register(subparsers: argparse._SubParsersAction) -> None:
    d = DEFAULTS
    parser = subparsers.add_parser(
        "worker", help="run a stream worker (Faust)",
        description="Consume CDRs from Kafka, judge them with the rule engine, emit decisions. The broker "
        "comes from CIDWATCH_BROKER (default kafka://127.0.0.1:9092), topic names from CIDWATCH_TOPIC_PREFIX "
        "(default 'cidwatch.'). Defaults are in streams/config.py.")
    add = parser.add_argument
    add("--inventory", type=Path, default=_env("CIDWATCH_INVENTORY", d.inventory), metavar="FILE",
        help="starting number inventory, YAML or CSV; a push to the inventory topic replaces it "
        "(env CIDWATCH_INVENTORY)")
    add("--rules", type=Path, default=_env("CIDWATCH_RULES", d.rules), metavar="DIR",
        help="directory of rule packs (env CIDWATCH_RULES; default: the shipped packs)")
    add("--workdir", type=Path, default=_env("CIDWATCH_WORKDIR", d.workdir), metavar="DIR",
        help=f"Faust's data directory (env CIDWATCH_WORKDIR, default {d.workdir})")
    add("--web-port", type=int, default=_env("CIDWATCH_WEB_PORT", d.web_port), metavar="N",
        help=f"port of /metrics (env CIDWATCH_WEB_PORT, default {d.web_port})")
    add("--web-host", default=_env("CIDWATCH_WEB_HOST", d.web_host), metavar="ADDR",
        help=f"address the web server binds (env CIDWATCH_WEB_HOST, default {d.web_host})")
    add("--store", choices=sorted(STORES), default=_env("CIDWATCH_STORE", d.store),
        help="where the state table lives between changelog reads: memory (rebuilt from its changelog on "
        f"assignment, never ahead of the broker) or rocksdb (env CIDWATCH_STORE, default {d.store})")
    add("--partitions", type=int, default=_env("CIDWATCH_PARTITIONS", d.partitions), metavar="N",
        help=f"partitions of the cdr topic and of the state (env CIDWATCH_PARTITIONS, default {d.partitions})")
    add("--default-region", default=_env("CIDWATCH_DEFAULT_REGION", d.default_region), metavar="CC",
        help="region for destinations in national format (env CIDWATCH_DEFAULT_REGION)")
    add("--max-record-bytes", type=int, metavar="N", default=_env("CIDWATCH_MAX_RECORD_BYTES", d.max_record_bytes),
        help=f"larger CDR messages go to the DLQ (env CIDWATCH_MAX_RECORD_BYTES, default {d.max_record_bytes})")
    add_hash_key_arguments(parser)
    add("--dedup-hours", type=float, default=_env("CIDWATCH_DEDUP_HOURS", d.dedup_hours),
        help=f"event time a call_id is remembered for (env CIDWATCH_DEDUP_HOURS, default {d.dedup_hours:g})")
    add("--input-format", action="append", default=[], metavar="NAME",
        help="also read raw.NAME topics of records in that format (repeatable; "
        "env CIDWATCH_INPUT_FORMATS, comma-separated)")
    add("--profile", type=Path, default=_env("CIDWATCH_PROFILE", d.profile), metavar="FILE",
        help="adapter profile for --input-format (env CIDWATCH_PROFILE)")
    add("--alertmanager-url", default=_env("CIDWATCH_ALERTMANAGER_URL", d.alertmanager_url), metavar="URL",
        help="post alert and block decisions to this Alertmanager (API v2) "
        "(env CIDWATCH_ALERTMANAGER_URL; default: no paging)")
    add("--alert-repost", type=float, default=_env("CIDWATCH_ALERT_REPOST", d.alert_repost_seconds), metavar="S",
        help=f"seconds between re-posts of firing alerts (env CIDWATCH_ALERT_REPOST, "
        f"default {d.alert_repost_seconds:g})")
    add("--runbook-base-url", default=_env("CIDWATCH_RUNBOOK_BASE_URL", d.runbook_base_url), metavar="URL",
        help="base of the runbook links in alerts, e.g. your repository's web URL "
        "(env CIDWATCH_RUNBOOK_BASE_URL; default: repository-relative docs/runbooks/...)")
    add("--cli-metrics-limit", type=int, default=_env("CIDWATCH_CLI_METRICS_LIMIT", d.cli_metrics_limit),
        metavar="N", help="per-caller-ID series for the busiest N CLIs when no inventory bounds them "
        f"(env CIDWATCH_CLI_METRICS_LIMIT, default {d.cli_metrics_limit})")
    add("--tenant-metrics-limit", type=int, default=_env("CIDWATCH_TENANT_METRICS_LIMIT", d.tenant_metrics_limit),
        metavar="N", help="tenants with their own metric label value; later ones are counted as \"other\" "
        f"(env CIDWATCH_TENANT_METRICS_LIMIT, default {d.tenant_metrics_limit})")
    add("--tick", type=float, default=_env("CIDWATCH_TICK", d.tick_seconds), metavar="S",
        help=f"seconds between wall-clock checks for blocks to lift (env CIDWATCH_TICK, default {d.tick_seconds:g})")
    add("--instance-id", default=_env("CIDWATCH_INSTANCE_ID", d.instance_id), metavar="NAME",
        help="static group membership under this stable name: a worker restarted with it takes its partitions "
        "back at once; a graceful stop then leaves them for --session-timeout (env CIDWATCH_INSTANCE_ID)")
    add("--session-timeout", type=float, default=_env("CIDWATCH_SESSION_TIMEOUT", d.session_timeout), metavar="S",
        help="seconds without a heartbeat before a worker's partitions move to the others "
        f"(env CIDWATCH_SESSION_TIMEOUT, default {d.session_timeout:g}; the broker's minimum is 6)")
    add("--heartbeat-interval", type=float, default=_env("CIDWATCH_HEARTBEAT_INTERVAL", d.heartbeat_interval),
        metavar="S", help=f"seconds between heartbeats (env CIDWATCH_HEARTBEAT_INTERVAL, "
        f"default {d.heartbeat_interval:g})")
    add("--batch-size", type=int, default=_env("CIDWATCH_BATCH_SIZE", d.batch_size), metavar="N",
        help=f"records judged per batch (env CIDWATCH_BATCH_SIZE, default {d.batch_size})")
    add("--stall-seconds", type=float, default=_env("CIDWATCH_STALL_SECONDS", d.stall_seconds), metavar="S",
        help="records waiting and nothing judged for this long sets cidwatch_stalled to 1 "
        f"(env CIDWATCH_STALL_SECONDS, default {d.stall_seconds:g})")
    add("--idle-seconds", type=float, default=_env("CIDWATCH_IDLE_SECONDS", d.idle_seconds), metavar="S",
        help="a partition with nothing to read that judged nothing for this long: the clock stands in for its "
        "event time to clear "
        f"the threshold levels of caller IDs that stopped calling (env CIDWATCH_IDLE_SECONDS, default "
        f"{d.idle_seconds:g})")
    add("--faust-metrics", action="store_true", default=bool(os.environ.get("CIDWATCH_FAUST_METRICS")),
        help="also expose Faust's own Prometheus sensor at /faust-metrics; it costs CPU on every event "
        "(env CIDWATCH_FAUST_METRICS)")
    add("--loglevel", default=_env("CIDWATCH_LOGLEVEL", d.loglevel),
        help=f"debug, info, warning (env CIDWATCH_LOGLEVEL, default {d.loglevel})")
    add_kafka_arguments(parser, replication=True)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    formats = list(args.input_format) or [f for f in (os.environ.get("CIDWATCH_INPUT_FORMATS") or "").split(",")
                                          if f]
    return WorkerConfig(
        settings=kafka_settings(args), inventory=args.inventory, rules=args.rules, workdir=Path(args.workdir),
        web_port=int(args.web_port), web_host=args.web_host, store=args.store, partitions=int(args.partitions),
        default_region=args.default_region, max_record_bytes=int(args.max_record_bytes),
        dedup_hours=float(args.dedup_hours), hash_key=hash_key(args), tick_seconds=float(args.tick),
        input_formats=tuple(formats),
        profile=args.profile, loglevel=args.loglevel, alertmanager_url=args.alertmanager_url,
        alert_repost_seconds=float(args.alert_repost), runbook_base_url=args.runbook_base_url,
        cli_metrics_limit=int(args.cli_metrics_limit), tenant_metrics_limit=int(args.tenant_metrics_limit),
        instance_id=args.instance_id or None,
        session_timeout=float(args.session_timeout), heartbeat_interval=float(args.heartbeat_interval),
        batch_size=int(args.batch_size), stall_seconds=float(args.stall_seconds),
        idle_seconds=float(args.idle_seconds), faust_metrics=args.faust_metrics,
    )


def run(args: argparse.Namespace) -> int:
    from streams.app import CidwatchWorker

    config = config_from_args(args)
    if not config.hash_key:
        # A phone number's hash without a secret key is reversed by hashing every number of the plan: the
        # worker keeps destinations only as keyed hashes, so it does not start without the key.
        raise CliError("no hash key: set --hash-key-file FILE, CIDWATCH_HASH_KEY_FILE or CIDWATCH_HASH_KEY "
                       "(destinations in state are hashed with it; replay needs the same key)")
    try:
        worker = CidwatchWorker(config)
    except (InventoryError, PackError) as exc:
        raise CliError(str(exc)) from exc
    if config.heartbeat_interval * 3 > config.session_timeout:
        raise CliError(f"--heartbeat-interval {config.heartbeat_interval:g} must be at most a third of "
                       f"--session-timeout {config.session_timeout:g}")
    worker.start()
    return 0
