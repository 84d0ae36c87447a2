"""What the worker's web server serves: `/metrics`, `/healthz` and `/readyz`, and none of Faust's views.

Faust mounts its own blueprints on the worker's port unless told not to (faust-streaming 0.15.3,
`faust/web/base.py`: `DEFAULT_BLUEPRINTS`, `BLUEPRINT_FLAGS`): `/router/...` names the worker that owns
any table key and the cluster's URLs, and `/table/...` reads any key of any table, so
`/table/subjects/<CLI>/` would hand a caller ID's whole state (call ids, counts, blocks) to anyone who
can reach the port, without authentication. cidwatch never routes requests between workers
(`@app.table_route`), so it switches both off, and with them the debug-only statistics, graph and
`/performance/` views, through Faust's own settings (`web_*_enabled`, read when `app.web` is made).
What is left of Faust's is its production index: `/` answers `{"status": "OK"}` and nothing else.

`/healthz` says the process serves; `/readyz` says whether it judges now (200) or why not (503), for a
container healthcheck or an orchestrator's readiness probe. Neither carries data about a number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust

from streams.metrics import Metrics

# Faust's settings that turn its built-in views off (passed to faust.App). The last three are off by
# default already (they follow `debug`); they are written here so that `debug` can never turn them on.
FAUST_VIEWS_OFF: dict[str, bool] = {
    "web_router_enabled": False,
    "web_tables_enabled": False,
    "web_stats_enabled": False,
    "web_graph_enabled": False,
    "web_metrics_enabled": False,
}


@dataclass(frozen=True)
class Readiness:
    """Whether the worker judges records now, and in words why not."""

    ready: bool
    reason: str


def serve(app: faust.App, metrics: Metrics, readiness: Callable[[], Readiness]) -> None:
    """Add cidwatch's pages to the worker's web server."""

    async def metrics_page(view: Any, request: Any) -> Any:
        # Rendered in a thread: a large registry must not hold the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
        return view.bytes(body, headers={"Content-Type": metrics.content_type})

    async def healthz(view: Any, request: Any) -> Any:
        return view.json({"status": "ok"})

    async def readyz(view: Any, request: Any) -> Any:
        state = readiness()
        return view.json({"ready": state.ready, "reason": state.reason}, status=200 if state.ready else 503)

    app.page("/metrics")(metrics_page)
    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
