"""Upload the dashboards to a Grafana server through grafana-client, idempotently by uid.

Each dashboard goes to POST /api/dashboards/db with `overwrite: true` and no numeric id, so Grafana
matches it by uid: pushing twice updates in place instead of creating copies. Every failure becomes a
PushError with a one-line message (the CLI prints it as is); no HTTP library exception leaks out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from dashboards.build import GENERATED

ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
PUSH_MESSAGE = "cidwatch dashboards push"
TIMEOUT_S = 10.0


class PushError(RuntimeError):
    """A push that cannot be done: bad URL, unreachable host, rejected token, refused dashboard."""


def check_url(url: str) -> str:
    """An http(s) URL with a host, or PushError: catch typos before any network call."""
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PushError(f"bad Grafana URL {url!r}: expected http(s)://host[:port][/path]")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise PushError(f"bad Grafana URL {url!r}: {exc}") from exc
    return url.rstrip("/")


def load_dashboards(out_dir: str | Path = GENERATED) -> list[dict[str, Any]]:
    """The generated JSON models, in file-name order; an empty folder means nothing was built."""
    paths = sorted(Path(out_dir).glob("*.json"))
    if not paths:
        raise PushError(f"no dashboards in {out_dir}: run 'cidwatch dashboards build --out {out_dir}' first")
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def payload(model: dict[str, Any], folder_uid: str | None = None) -> dict[str, Any]:
    """The body Grafana documents for POST /api/dashboards/db: match by uid (id null), overwrite."""
    body: dict[str, Any] = {"dashboard": {**model, "id": None}, "overwrite": True, "message": PUSH_MESSAGE}
    if folder_uid:
        body["folderUid"] = folder_uid
    return body


def push(
    url: str,
    token: str | None = None,
    out_dir: str | Path = GENERATED,
    folder_uid: str | None = None,
    timeout: float = TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Upload every generated dashboard; returns Grafana's responses (uid, url, version, status)."""
    base = check_url(url)
    models = load_dashboards(out_dir)
    # grafana-client joins its path prefix and "api" verbatim: a prefix must end with "/".
    api_url = f"{base}/" if urlparse(base).path else base
    api = GrafanaApi.from_url(api_url, credential=token or None, timeout=timeout)
    return [_upload(api, base, model, folder_uid) for model in models]


def _upload(api: GrafanaApi, base: str, model: dict[str, Any], folder_uid: str | None) -> dict[str, Any]:
    uid = model.get("uid", "?")
    response = _post(api, base, model, folder_uid)
    if not isinstance(response, dict) or response.get("uid") != uid:
        raise PushError(f"{base} did not answer like Grafana's dashboard API for {uid}: "
                        f"{_one_line(repr(response), 120)}")
    return response


def _post(api: GrafanaApi, base: str, model: dict[str, Any], folder_uid: str | None) -> Any:
    """POST one dashboard, turning grafana-client's and niquests' exceptions into PushError."""
    uid = model.get("uid", "?")
    try:
        return api.dashboard.update_dashboard(payload(model, folder_uid))
    except GrafanaUnauthorizedError as exc:
        raise PushError(f"Grafana at {base} rejected the token (401): check --token / GRAFANA_TOKEN") from exc
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise PushError(f"Grafana at {base} refused access (403): the token needs dashboard write "
                            "permission (Editor role)") from exc
        raise PushError(f"Grafana at {base} refused dashboard {uid}: {_one_line(exc.message)}") from exc
    except GrafanaTimeoutError as exc:
        raise PushError(f"Grafana at {base} did not answer within the timeout") from exc
    except GrafanaException as exc:
        raise PushError(f"Grafana at {base} failed on dashboard {uid}: {_one_line(exc.message)}") from exc
    except json.JSONDecodeError as exc:  # a 2xx body that is not JSON (niquests' is also an OSError)
        raise PushError(f"{base} did not answer like Grafana's dashboard API: {_one_line(str(exc))}") from exc
    except OSError as exc:  # connection refused, DNS failure, TLS error: niquests' errors are OSErrors
        raise PushError(f"cannot reach Grafana at {base}: {_reason(exc)}") from exc


def _reason(exc: OSError) -> str:
    """The OS-level reason buried in a connection error ("Connection refused"), else its class."""
    text = str(exc)
    if "Failed to resolve" in text or "NameResolutionError" in text:
        return "host name not found"
    found = ERRNO_REASON.search(text)
    return found.group(1).strip() if found else type(exc).__name__


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
