"""`cidwatch api`: the check API's aiohttp application and its command.

One small process, apart from the workers: it follows the compacted topics (`follower`) into memory
(`book`) and answers every caller ID whatever partition owns it. Without CIDWATCH_API_TOKEN it
listens on a loopback address only (it refuses another) and says so at start; with one, every /v1/
request must carry `Authorization: Bearer TOKEN`. /healthz, /readyz and /openapi.json are open: a
load balancer's probes carry no token. So are the runbooks (/docs/runbooks/RULE.md, shipped in the
package): with `--runbook-base-url` pointing at this API, the links in answers and pages open for
someone who clicks them in a chat message, with no token to give.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from cidwatch.api.book import BadRequest, Book
from cidwatch.api.follower import Follower
from cidwatch.api.openapi import document
from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from streams.settings import Settings

log = logging.getLogger("cidwatch.api")
BOOK = web.AppKey("book", Book)
FOLLOWER = web.AppKey("follower", Follower)
CONFIG = web.AppKey("config", "ApiConfig")
RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"  # docs/runbooks, as package data
RUNBOOK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ApiConfig:
    """The API's settings; each is a flag with an environment fallback (see `register`)."""

    settings: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 8066
    token: str | None = None
    runbook_base_url: str = ""

    def check_exposure(self) -> None:
        """No token: only a loopback address, since anyone who can reach the port could read every block."""
        if self.token:
            return
        if self.host == "localhost":
            return
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise CliError(f"--host {self.host}: without CIDWATCH_API_TOKEN the API listens on a loopback "
                           "address only; set a token to listen on other addresses")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/v1/: the bearer token when one is set, and no answer before the topics are read to their end."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    token = request.app[CONFIG].token
    if token:
        given = request.headers.get("Authorization", "")
        if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())):
            response = _json({"error": "missing or wrong bearer token"}, 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="cidwatch"'
            return response
    readiness = request.app[FOLLOWER].readiness
    if not readiness.ready:
        return _json({"error": f"not ready: {readiness.reason}"}, 503)
    try:
        return await handler(request)
    except BadRequest as exc:
        return _json({"error": str(exc)}, 400)


async def check(request: web.Request) -> web.Response:
    query = request.query
    answer = request.app[BOOK].check(query.get("cli"), query.get("tenant") or None, query.get("destination"),
                                     datetime.now(UTC), query.get("purpose"))
    return _json(answer)


async def blocks(request: web.Request) -> web.Response:
    listed = request.app[BOOK].blocks(request.query.get("tenant"), request.query.get("rule"))
    return _json({"blocks": listed, "count": len(listed)})


async def healthz(_request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    readiness = request.app[FOLLOWER].readiness
    book = request.app[BOOK]
    body = {"ready": readiness.ready, "reason": readiness.reason, "records_read": readiness.records,
            "end_offsets": readiness.ends, "blocks_in_force": len(book.table.blocks),
            "inventory_numbers": None if book.inventory is None else len(book.inventory)}
    if book.inventory_error:
        body["inventory_error"] = book.inventory_error
    return _json(body, 200 if readiness.ready else 503)


async def runbook(request: web.Request) -> web.Response:
    """A rule's or an alert's runbook, as the Markdown it is written in (text/plain: browsers show it)."""
    name = request.match_info["name"]
    path = RUNBOOKS / f"{name}.md"
    if not RUNBOOK_NAME.fullmatch(name) or not path.is_file():
        return _json({"error": f"no runbook {name}"}, 404)
    return web.Response(text=path.read_text(encoding="utf-8"), content_type="text/plain", charset="utf-8")


async def openapi(_request: web.Request) -> web.Response:
    return _json(document())


def make_app(config: ApiConfig) -> web.Application:
    """The application; its follower task runs while the application does."""
    app = web.Application(middlewares=[_guard])
    book = Book(runbook_base_url=config.runbook_base_url)
    app[CONFIG] = config
    app[BOOK] = book
    app[FOLLOWER] = Follower(config.settings, book)
    app.router.add_get("/v1/check", check)
    app.router.add_get("/v1/blocks", blocks)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs/runbooks/{name}.md", runbook)
    app.cleanup_ctx.append(_following)
    return app


async def _following(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[FOLLOWER].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- command line -----------------------------------------------------------------------------

DEFAULTS = ApiConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    d = DEFAULTS
    parser = subparsers.add_parser(
        "api", help="serve the check API: may a dialer present this caller ID now? (HTTP)",
        description="Follow the compacted blocks and inventory topics (broker: env CIDWATCH_BROKER, prefix: env "
                    "CIDWATCH_TOPIC_PREFIX) and answer GET /v1/check, /v1/blocks, /healthz, /readyz and "
                    "/openapi.json. With env CIDWATCH_API_TOKEN set, /v1/ requests need 'Authorization: Bearer "
                    "TOKEN'; without it the API listens on loopback only.")
    parser.add_argument("--host", default=os.environ.get("CIDWATCH_API_HOST", d.host), metavar="ADDR",
                        help=f"address to listen on (env CIDWATCH_API_HOST, default {d.host})")
    parser.add_argument("--port", type=int, default=os.environ.get("CIDWATCH_API_PORT", d.port), metavar="N",
                        help=f"port (env CIDWATCH_API_PORT, default {d.port})")
    parser.add_argument("--runbook-base-url", default=os.environ.get("CIDWATCH_RUNBOOK_BASE_URL", d.runbook_base_url),
                        metavar="URL", help="base of the runbook links in answers, e.g. this API's own URL, "
                        "which serves them (env CIDWATCH_RUNBOOK_BASE_URL; default: repository-relative "
                        "docs/runbooks/...)")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_api)


def _cmd_api(args: argparse.Namespace) -> int:
    config = ApiConfig(settings=kafka_settings(args), host=args.host, port=args.port,
                       token=os.environ.get("CIDWATCH_API_TOKEN") or None, runbook_base_url=args.runbook_base_url)
    config.check_exposure()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    auth = ("bearer token required on /v1/" if config.token
            else "no CIDWATCH_API_TOKEN: no authentication, listening on loopback only")
    print(f"cidwatch api on http://{config.host}:{config.port} ({auth}); following "
          f"{config.settings.topic('blocks')} and {config.settings.topic('inventory')} at "
          f"{config.settings.bootstrap_servers}", file=sys.stderr, flush=True)
    try:
        web.run_app(make_app(config), host=config.host, port=config.port, access_log=None, print=None,
                    handle_signals=True)
    except OSError as exc:
        raise CliError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    return 0
