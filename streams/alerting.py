"""Alert and block decisions to Alertmanager's API v2: compliance pages through the NOC's own tool.

Why here and not in Prometheus rules: a decision is an event with its own identity, window and
lifetime (a block lasts until its unblock), which a scraped gauge cannot express without losing
the caller ID, the message or the exact start. So the worker posts each decision as an alert:

- labels `alertname` (rule id), `severity`, `caller_id`, `tenant` ("" when none) and `scope` (the
  canonical JSON of the scope, only when non-empty: two scopes of one rule for one CLI are two
  alerts); annotations `summary` (one line), `description` (the decision's message, its source and,
  for a block, since when and until when), `runbook_url` (absolute under `--runbook-base-url`),
  `source`, `decision_id`; `startsAt` = decision `at`;
- an alert decision ends with its window: `endsAt` = `until` (or `at` + 24 h when there is none);
- a block is in force until its unblock, whether this worker runs or not (it is on the `blocks`
  topic): its `endsAt` is held `block_hold` ahead (24 h), refreshed on each re-post, so a stopped or
  restarting worker never makes Alertmanager report it resolved. Alertmanager only resolves an alert
  on its own when the client gave no `endsAt` (then `resolve_timeout`, api/v2/api.go), and of two
  posts of one alert keeps the later `endsAt` unless the newer one is resolved (alert/alert.go
  `Merge`). A time-boxed block's `endsAt` is its `until` (never sooner than a re-post away). Its
  unblock posts the same labels with `endsAt` = unblock `at`, which resolves it at once;
- the worker's own liveness is the alert `CidwatchWorkerWatchdog` (labels `team=noc`,
  `severity=none`, `instance`): posted with a short rolling `endsAt` (3 x the re-post interval), so
  Alertmanager resolves it, and the NOC hears of it, within minutes of the worker stopping, while the
  blocks stay firing;
- everything still firing is re-posted every `repost_seconds` (Alertmanager forgets alerts that are
  not refreshed, and a restarted Alertmanager without storage starts empty).

The stream must never wait on paging: `submit()` only appends to a bounded in-memory queue (the
oldest entry is dropped, and counted, when full); one background task turns decisions into alerts
and posts them, retrying failures with exponential back-off and jitter. A decision id seen before is
ignored, so re-delivered decisions (Kafka is at-least-once) neither duplicate nor reset an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from rules.cdr import iso_utc
from rules.decision import scope_key

log = logging.getLogger(__name__)

# Runbook links are repository-relative by default, exactly as deploy/prometheus-rules.yml writes
# them; give the repository's web URL (e.g. https://git.example.com/org/cidwatch/blob/main) to make
# them clickable in pages and chat messages.
DEFAULT_REPO_URL = ""
RUNBOOK_PATH = "docs/runbooks/{rule}.md"
DEFAULT_ALERT_LIFETIME = timedelta(hours=24)  # an alert decision without `until`
BLOCK_HOLD = timedelta(hours=24)  # a block's endsAt is held this far ahead: it outlives any restart
ROLLING_FACTOR = 3  # the watchdog's endsAt is now + ROLLING_FACTOR x repost_seconds
WATCHDOG = "CidwatchWorkerWatchdog"
MAX_QUEUE = 10_000
MAX_REMEMBERED_IDS = 100_000
MAX_BATCH = 500  # alerts per POST: keeps one request small whatever is firing
POSTED_KINDS = frozenset({"alert", "block", "unblock", "resolve"})
OK, RETRY, REFUSED = "ok", "retry", "refused"  # outcomes of one POST

Fingerprint = tuple[tuple[str, str], ...]
ResultHook = Callable[[bool], None]


# --- decision -> alert, pure ----------------------------------------------------------------------


def runbook_url(rule: str, repo_url: str = DEFAULT_REPO_URL) -> str:
    """docs/runbooks/<rule>.md, under `repo_url` when one is given."""
    path = RUNBOOK_PATH.format(rule=rule)
    return f"{repo_url.rstrip('/')}/{path}" if repo_url else path


def alert_labels(decision: Mapping[str, Any]) -> dict[str, str]:
    """The identity of the alert in Alertmanager: an unblock carries the labels of its block."""
    labels = {
        "alertname": str(decision["rule"]),
        "severity": str(decision["severity"]),
        "caller_id": str(decision["caller_id"]),
        "tenant": str(decision.get("tenant") or ""),
    }
    scope = decision.get("scope") or {}
    if scope:
        labels["scope"] = scope_key(dict(scope))
    return labels


def alert_summary(decision: Mapping[str, Any]) -> str:
    """One line for a page's title: what, on which caller ID, for which tenant."""
    rule, caller_id, tenant = decision["rule"], decision["caller_id"], decision.get("tenant")
    what = f"{caller_id} blocked by {rule}" if decision.get("kind") == "block" else f"{rule} on {caller_id}"
    scope = decision.get("scope") or {}
    if scope:
        what += " (" + ", ".join(f"{key} {value}" for key, value in sorted(scope.items())) + ")"
    return f"{what}, tenant {tenant}" if tenant else what


def alert_description(decision: Mapping[str, Any]) -> str:
    """The decision's own message, its source, and for a block how long it lasts."""
    parts = [str(decision.get("message") or "").strip()]
    if decision.get("kind") == "block":
        until = decision.get("until")
        parts.append(f"In force since {decision['at']} " + (f"until {until}." if until else
                     "until cleared (cidwatch blocks clear): dialers must not present this caller ID."))
    if decision.get("source"):
        parts.append(f"Source: {decision['source']}")
    return " ".join(part for part in parts if part)


def alert_annotations(decision: Mapping[str, Any], repo_url: str = DEFAULT_REPO_URL) -> dict[str, str]:
    """What the on-call reads: a summary line, the decision's message with its legal source, and what
    to do about it."""
    return {
        "summary": alert_summary(decision),
        "description": alert_description(decision),
        "source": str(decision.get("source") or ""),
        "runbook_url": runbook_url(str(decision["rule"]), repo_url),
        "decision_id": str(decision["id"]),
    }


def parse_time(value: Any) -> datetime:
    """A decision timestamp (ISO 8601, `Z` allowed, or a datetime) as an aware UTC datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return moment.astimezone(UTC)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random, so many workers that lost
    Alertmanager together do not all come back in the same instant."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def fingerprint(labels: Mapping[str, str]) -> Fingerprint:
    """Alertmanager identifies an alert by its label set; so do we."""
    return tuple(sorted(labels.items()))


@dataclass
class _Alert:
    """One alert as it will be (re-)posted. `ends` None means a block: its endsAt is held ahead of
    now (`hold`), or is its `until` when it has one."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts: datetime
    ends: datetime | None
    decision_id: str
    until: datetime | None = None  # a time-boxed block's end

    def wire(self, now: datetime, hold: timedelta, rolling: timedelta) -> dict[str, Any]:
        """The JSON Alertmanager's POST /api/v2/alerts takes (postableAlert)."""
        ends = self.ends
        if ends is None:
            ends = now + hold if self.until is None else min(now + hold, max(self.until, now + rolling))
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": iso_utc(self.starts),
            "endsAt": iso_utc(ends),
        }

    def expired(self, now: datetime) -> bool:
        return self.ends is not None and self.ends <= now


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- the poster ---------------------------------------------------------------------------------


class AlertPoster:
    """Posts alert, block and unblock decisions to Alertmanager in the background.

    Use: `await poster.start()` once the event loop runs, `poster.submit(decision.to_dict())` for
    every decision (any kind; only alert/block/unblock are posted), `await poster.stop()` on
    shutdown. With `url=None` every method is a no-op, so the worker needs no `if`.
    Call `submit()` from the event loop's thread (it is also safe from other threads).

    A restarted worker knows nothing of blocks posted before: submit the active blocks (the `blocks`
    table) again on start. Their ids are new to this process, and Alertmanager merges them into the
    alerts it already has (same labels, same startsAt), so nothing pages twice; without that, their
    held endsAt would lapse a day later and Alertmanager would resolve blocks still in force.
    """

    def __init__(
        self,
        url: str | None,
        repo_url: str = DEFAULT_REPO_URL,
        repost_seconds: float = 60,
        timeout: float = 5,
        max_backoff: float = 60,
        *,
        min_backoff: float = 1.0,
        max_queue: int = MAX_QUEUE,
        on_result: ResultHook | None = None,
        block_hold: timedelta = BLOCK_HOLD,
        worker: str | None = None,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self.repo_url = repo_url
        self.repost_seconds = float(repost_seconds)
        self.timeout = float(timeout)
        self.max_backoff = float(max_backoff)
        self.min_backoff = min(float(min_backoff), self.max_backoff)
        self.on_result = on_result
        self.block_hold = block_hold
        self.worker = worker or "cidwatch"  # the watchdog's `instance` label
        self._started_at: datetime | None = None
        self.dropped = 0  # decisions dropped because the queue was full
        self.duplicates = 0  # decisions ignored because their id was already posted
        self.invalid = 0  # decisions that could not be turned into an alert
        self.posts_ok = 0
        self.posts_failed = 0  # not taken (unreachable, timeout, 5xx, 429): retried
        self.posts_refused = 0  # refused as invalid (4xx): not retried
        self._queue: deque[Mapping[str, Any]] = deque()
        self._max_queue = max_queue
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._firing: dict[Fingerprint, _Alert] = {}
        self._pending: dict[Fingerprint, _Alert] = {}  # changes not yet accepted by Alertmanager
        self._attempt = 0
        self._next_attempt = 0.0  # monotonic
        self._next_repost = 0.0  # monotonic
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- the caller's side: never blocks, never raises --------------------------------------------

    def submit(self, decision: Mapping[str, Any]) -> None:
        """Queue a decision (a `Decision.to_dict()`); returns at once whatever Alertmanager does."""
        if self.url is None:
            return
        try:
            if len(self._queue) >= self._max_queue:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(decision)
            self._notify()
        except Exception:  # a pager bug must never stop the stream
            log.exception("alerting: could not queue a decision")

    def firing(self) -> list[dict[str, Any]]:
        """The alerts currently re-posted, as posted (for tests and a debug endpoint)."""
        now = datetime.now(UTC)
        return [a.wire(now, self.block_hold, self._rolling) for a in self._firing.values() if not a.expired(now)]

    def stats(self) -> dict[str, int]:
        """Counters for the worker's metrics."""
        return {
            "queued": len(self._queue), "firing": len(self._firing), "pending": len(self._pending),
            "dropped": self.dropped, "duplicates": self.duplicates, "invalid": self.invalid,
            "posts_ok": self.posts_ok, "posts_failed": self.posts_failed, "posts_refused": self.posts_refused,
        }

    def watchdog(self, now: datetime) -> dict[str, Any]:
        """The worker's own always-firing alert, with a short rolling endsAt: it resolves in
        Alertmanager a few re-post intervals after this worker stops posting."""
        return {
            "labels": {"alertname": WATCHDOG, "severity": "none", "team": "noc", "instance": self.worker},
            "annotations": {
                "summary": f"cidwatch worker {self.worker} is alive and posting to Alertmanager",
                "description": "Always firing while the worker runs, re-posted every "
                               f"{self.repost_seconds:g} s. Resolved means the worker stopped posting: "
                               "blocks stay firing (they are still in force), but nothing new is decided.",
                "runbook_url": runbook_url(WATCHDOG, self.repo_url),
            },
            "startsAt": iso_utc(self._started_at or now),
            "endsAt": iso_utc(now + self._rolling),
        }

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background task (idempotent; a no-op without a URL)."""
        if self.url is None or self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._started_at = datetime.now(UTC).replace(microsecond=0)
        self._next_repost = time.monotonic()  # the watchdog at once, then every repost_seconds
        self._task = asyncio.create_task(self._run(), name="cidwatch-alertmanager")

    async def stop(self) -> None:
        """Stop the task, then try once (bounded by `timeout`) to deliver what is still pending."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is None:
            return
        try:
            self._drain()
            if self._pending:
                await self._send(self._batch(full=False))
        except Exception:
            log.exception("alerting: final delivery failed")
        finally:
            await self._session.close()
            self._session = None

    # -- the background task -----------------------------------------------------------------------

    @property
    def _rolling(self) -> timedelta:
        return timedelta(seconds=ROLLING_FACTOR * self.repost_seconds)

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not started yet: start() picks the queue up
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                self._drain()
                now = time.monotonic()
                repost_due = now >= self._next_repost
                if (self._pending or repost_due) and now >= self._next_attempt:
                    await self._deliver(full=repost_due)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep paging alive whatever one bad decision or response does
                log.exception("alerting: unexpected error")
                self._failed()
            await self._sleep()

    async def _sleep(self) -> None:
        """Until a new decision arrives or the next thing to do is allowed: work exists now (pending
        changes) or at the next re-post, and may not start before the back-off allows a retry."""
        now = time.monotonic()
        work_at = now if self._pending else self._next_repost
        wake_at = max(work_at, self._next_attempt)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, wake_at - now))

    def _drain(self) -> None:
        while self._queue:
            decision = self._queue.popleft()
            try:
                self._apply(decision)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.invalid += 1
                log.warning("alerting: decision not posted (%s: %s): %r", type(exc).__name__, exc, decision)

    def _apply(self, decision: Mapping[str, Any]) -> None:
        """Turn one decision into a firing or resolving alert; ignore ids already seen."""
        if hasattr(decision, "to_dict"):
            decision = decision.to_dict()
        kind = decision.get("kind")
        if kind not in POSTED_KINDS:
            return
        ident = str(decision["id"])
        labels = alert_labels(decision)
        key = fingerprint(labels)
        current = self._firing.get(key)
        if ident in self._seen or (current is not None and current.decision_id == ident):
            self.duplicates += 1
            return
        self._remember(ident)
        # Alertmanager runs on this clock: an event time ahead of it (clock skew, simulated traffic)
        # is clamped to now, or a block would start, and its unblock resolve it, only in the future.
        at = min(parse_time(decision["at"]), datetime.now(UTC))
        if kind in ("unblock", "resolve"):  # a block lifted, or a threshold rule's alert cleared
            self._resolve(key, decision, at)
            return
        until = parse_time(decision["until"]) if decision.get("until") else None
        block = kind == "block"
        ends = None if block else until or at + DEFAULT_ALERT_LIFETIME
        alert = _Alert(labels, alert_annotations(decision, self.repo_url), at, ends, ident, until if block else None)
        self._pending[key] = alert
        if not alert.expired(datetime.now(UTC)):
            self._firing[key] = alert

    def _resolve(self, key: Fingerprint, unblock: Mapping[str, Any], at: datetime) -> None:
        """The block's labels with endsAt = the unblock's `at`; its own annotations, plus why it ended."""
        block = self._firing.pop(key, None)
        if block is None:  # a block this process never saw (restart): resolve by labels alone
            block = _Alert(alert_labels(unblock), alert_annotations(unblock, self.repo_url), at, None,
                           str(unblock["id"]))
        annotations = {**block.annotations, "resolution": str(unblock.get("message") or ""),
                       "unblock_id": str(unblock["id"])}
        self._pending[key] = _Alert(block.labels, annotations, min(block.starts, at), at, str(unblock["id"]))

    def _remember(self, ident: str) -> None:
        self._seen[ident] = None
        while len(self._seen) > MAX_REMEMBERED_IDS:
            self._seen.popitem(last=False)

    def _batch(self, full: bool) -> list[dict[str, Any]]:
        """Pending changes, plus (on a re-post) every alert still firing; expired alerts are dropped
        from the firing set, Alertmanager resolves them at their own endsAt."""
        now = datetime.now(UTC)
        for key in [k for k, a in self._firing.items() if a.expired(now)]:
            del self._firing[key]
        chosen = dict(self._pending)
        if full:
            chosen.update({k: a for k, a in self._firing.items() if k not in chosen})
        batch = [alert.wire(now, self.block_hold, self._rolling) for alert in chosen.values()]
        return [*batch, self.watchdog(now)] if full else batch

    async def _deliver(self, full: bool) -> None:
        batch = self._batch(full)
        if batch and not await self._send(batch):
            self._failed()
            return
        self._pending.clear()
        self._attempt = 0
        self._next_attempt = 0.0
        if full:
            self._next_repost = time.monotonic() + self.repost_seconds

    def _failed(self) -> None:
        self._attempt += 1
        delay = backoff_delay(self._attempt, self.min_backoff, self.max_backoff)
        self._next_attempt = time.monotonic() + delay
        log.info("alerting: retry %d in %.1fs", self._attempt, delay)

    async def _send(self, batch: list[dict[str, Any]]) -> bool:
        """POST in chunks. False (retry later) on a connection error, a timeout, a 5xx or a 429;
        True once every chunk was taken, or refused as invalid, which no retry would fix."""
        outcome = OK
        for chunk in _chunks(batch, MAX_BATCH):
            outcome = await self._post(chunk)
            if outcome == RETRY:
                break
        if outcome == OK:
            self.posts_ok += 1
        elif outcome == REFUSED:
            self.posts_refused += 1
        else:
            self.posts_failed += 1
        self._report(outcome == OK)
        return outcome != RETRY

    async def _post(self, chunk: list[dict[str, Any]]) -> str:
        """One request: OK, RETRY or REFUSED (a 4xx: logged with Alertmanager's reason, not retried;
        Alertmanager still stores the valid alerts of a batch it answers 400 to)."""
        assert self._session is not None and self.url is not None
        try:
            async with self._session.post(f"{self.url}/api/v2/alerts", json=chunk) as response:
                if response.status < 300:
                    return OK
                body = (await response.text())[:500]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("alerting: Alertmanager unreachable at %s: %s", self.url, exc or type(exc).__name__)
            return RETRY
        if 400 <= response.status < 500 and response.status != 429:
            log.error("alerting: Alertmanager refused %d alert(s) (%d): %s", len(chunk), response.status, body)
            return REFUSED
        log.warning("alerting: Alertmanager answered %d: %s", response.status, body)
        return RETRY

    def _report(self, ok: bool) -> None:
        if self.on_result is None:
            return
        try:
            self.on_result(ok)
        except Exception:
            log.exception("alerting: on_result hook failed")
