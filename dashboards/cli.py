"""`cidwatch dashboards build` and `cidwatch dashboards push`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dashboards.build import GENERATED, build
from dashboards.push import PushError, push
from rules.errors import CidwatchError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="generate or upload the Grafana dashboards",
                                   description="Grafana dashboards as code (grafana-foundation-sdk).")
    actions = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    build_parser = actions.add_parser("build", help="regenerate the dashboard JSON",
                                      description="Write one JSON model per dashboard into --out.")
    # Required: an installed package's own folder is in site-packages, which is never written to.
    build_parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                              help="output folder (in a checkout, dashboards/generated is what Grafana provisions)")
    build_parser.set_defaults(func=run_build)

    push_parser = actions.add_parser("push", help="upload the dashboards to Grafana, by uid",
                                     description="POST each generated dashboard to Grafana's "
                                                 "/api/dashboards/db with overwrite: safe to repeat.")
    push_parser.add_argument("--url", default=os.environ.get("GRAFANA_URL"), metavar="URL",
                             help="Grafana base URL, e.g. http://localhost:3000 (env GRAFANA_URL)")
    push_parser.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"), metavar="T",
                             help="service-account token sent as a Bearer token (env GRAFANA_TOKEN); "
                                  "or put user:password in the URL")
    push_parser.add_argument("--folder-uid", default=os.environ.get("GRAFANA_FOLDER_UID"), metavar="UID",
                             help="folder to put the dashboards in (env GRAFANA_FOLDER_UID; default General)")
    push_parser.add_argument("--dir", type=Path, default=GENERATED, metavar="DIR",
                             help="folder of generated dashboard JSON to upload")
    push_parser.set_defaults(func=run_push)


def run_build(args: argparse.Namespace) -> int:
    for path in build(args.out):
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    if not args.url:
        raise CidwatchError("dashboards push needs --url (or GRAFANA_URL)")
    try:
        results = push(args.url, token=args.token, out_dir=args.dir, folder_uid=args.folder_uid)
    except PushError as exc:
        raise CidwatchError(str(exc)) from exc
    for result in results:
        print(f"{result.get('uid')}  version {result.get('version', '?')}  {result.get('url', '')}")
    return 0
