"""The rule engine: one implementation of every rule, used by `replay` and by the stream alike.

It is a pure function of (record, remembered state): no clock, no I/O. Time comes from the records
(event time) or from the caller (`expire(now)`), and state lives in a `StateStore` whose keys all
start with the record's subject, so the stream can partition it by that subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from rules.decision import Decision, block_key, decision_id, scope_key
from rules.inventory import Inventory
from rules.numbers import NumberInfo, classify, classify_with_region, strip_separators
from rules.packs import PackError, Rule, RulePack
from rules.risk import RiskConfig, RiskScore, RiskState
from rules.state import StateStore
from streams.cdr import Cdr, zone

DEFAULT_DEDUP_SECONDS = 48 * 3600
NANP_CNAM_REGIONS = frozenset({"US", "CA"})
UNCLASSIFIED = classify("")


@dataclass
class Outcome:
    """What the engine made of one record: its decisions and the classification it used."""

    status: str  # judged | duplicate | internal
    subject: str
    decisions: list[Decision] = field(default_factory=list)
    caller: NumberInfo | None = None
    destination: NumberInfo | None = None
    risk: RiskScore | None = None
    day_count: int | None = None  # the CLI's calls in its current day, against `daily_cap`
    daily_cap: float | None = None


@dataclass(frozen=True)
class Window:
    key: str  # e.g. "2026-03-29" (a calendar date in the rule's zone)
    end: datetime  # the next midnight of that zone, in UTC


def window_of(rule: Rule, moment: datetime) -> Window:
    """The calendar day of `moment` in the rule's zone (UTC for utc_day), DST-aware."""
    tz = UTC if rule.window == "utc_day" else zone(rule.timezone)
    day = moment.astimezone(tz).date()
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return Window(day.isoformat(), end)


class Engine:
    """Applies the enabled rules of a pack to CDRs, remembering through a StateStore."""

    def __init__(
        self,
        pack: RulePack,
        inventory: Inventory | None = None,
        default_region: str | None = None,
        dedup_seconds: int = DEFAULT_DEDUP_SECONDS,
    ) -> None:
        self.pack = pack
        self.inventory = inventory
        self.default_region = default_region.upper() if default_region else None
        self.dedup_seconds = dedup_seconds
        self._next_due: datetime | None = None
        self.risk_config = self._risk_config()

    def _risk_config(self) -> RiskConfig | None:
        rule = self.pack.get("spam.label_risk")
        if rule is None:
            return None
        try:
            return RiskConfig.from_dict(rule.params)
        except (TypeError, ValueError) as exc:
            raise PackError(f"spam.label_risk: params: {exc}") from exc

    # -- routing -----------------------------------------------------------------------------

    def subject(self, cdr: Cdr) -> str:
        """The number whose state a record touches: the presented CLI, or for inbound calls ours."""
        if cdr.direction == "inbound":
            info = self.destination_info(cdr)
            return info.e164 or cdr.destination
        info = classify(cdr.caller_id)
        return info.e164 or cdr.caller_id

    def destination_info(self, cdr: Cdr) -> NumberInfo:
        return classify_with_region(cdr.destination, self.default_region)

    # -- the main entry point ------------------------------------------------------------------

    def process(self, cdr: Cdr, state: StateStore) -> Outcome:
        """Judge one record: de-duplicate, lift this subject's expired blocks, then apply the rules."""
        subject = self.subject(cdr)
        outcome = Outcome("judged", subject)
        seen_key = f"{subject}\x1f{cdr.call_id}"
        first_seen = state.get("seen", seen_key)
        if first_seen is not None and abs(cdr.started_at.timestamp() - first_seen) <= self.dedup_seconds:
            outcome.status = "duplicate"
            return outcome
        state.set("seen", seen_key, cdr.started_at.timestamp())
        outcome.decisions.extend(self.expire_subject(subject, cdr.started_at, state))
        if cdr.direction == "internal":
            outcome.status = "internal"
            return outcome
        if cdr.direction == "inbound":
            outcome.destination = self.destination_info(cdr)
            outcome.decisions.extend(self._callback_rules(cdr, outcome.destination, state))
            return outcome
        outcome.caller = classify(cdr.caller_id)
        if self._destination_matters(outcome.caller, cdr.destination):
            outcome.destination = self.destination_info(cdr)
        dest = outcome.destination or UNCLASSIFIED
        outcome.decisions.extend(self._outbound_rules(cdr, outcome.caller, dest, state))
        if outcome.caller.valid and self.risk_config is not None:
            outcome.risk = self._risk_score(cdr, outcome.caller.e164 or "", state)
            outcome.decisions.extend(self._risk_alerts(cdr, outcome.caller.e164 or "", outcome.risk, state))
        self._daily_usage(cdr, outcome, state)
        return outcome

    def _daily_usage(self, cdr: Cdr, outcome: Outcome, state: StateStore) -> None:
        """What the NOC compares with a cap: the Paris-day count for French non-NPV CLIs (cap 250),
        else the rolling 24 h calls against the ~100 a day of spam-label guidance."""
        cli = outcome.caller
        if cli is None or cli.e164 is None:
            return
        rule = self.pack.get("fr.daily_limit")
        if rule is not None and cli.calling_code == 33 and not self._is_npv(cli):
            window = window_of(rule, cdr.started_at)
            outcome.day_count = state.get("counts", f"{cli.e164}|{rule.id}|{window.key}") or 0
            outcome.daily_cap = max(t.at for t in rule.thresholds)
        elif outcome.risk is not None and self.risk_config is not None:
            outcome.day_count = int(outcome.risk.inputs.get("calls_24h", 0))
            outcome.daily_cap = self.risk_config.daily_calls_guidance

    def _destination_matters(self, cli: NumberInfo, destination: str) -> bool:
        """Whether classifying the destination can change a decision: most calls it cannot.

        Destinations are mostly unique, so parsing each one dominates the cost of a record. Only a
        toll-free CLI, an Australian (+61) destination, or a nationally written destination (which the
        default region may make Australian) is looked at; calling codes are prefix-free, so a valid
        number not starting with +61 is never Australian.
        """
        if not cli.valid:
            return False
        if cli.toll_free:
            return True
        stripped = strip_separators(destination)
        return stripped.startswith("+61") or (self.default_region is not None and not stripped.startswith("+"))

    # -- outbound CLI rules ---------------------------------------------------------------------

    def _outbound_rules(
        self, cdr: Cdr, cli: NumberInfo, dest: NumberInfo, state: StateStore
    ) -> Iterator[Decision]:
        if not cli.valid or cli.e164 is None:
            yield from self._maybe_alert(state, "cli.invalid", cdr.caller_id, {}, cdr,
                                         f"Outbound caller ID {cdr.caller_id!r} is not a valid E.164 number; "
                                         "carriers may block or relabel these calls.")
            return
        number = cli.e164
        if self.inventory is not None and not self.inventory.authorises(number, cdr.tenant):
            yield from self._maybe_block(state, "cli.not_authorized", number, {}, cdr,
                                         f"Caller ID {number} is not claimed, ported or verified for "
                                         f"tenant {cdr.tenant or '(none)'}; stop presenting it.")
        if cli.nanp_toll_free and dest.valid and dest.nanp_toll_free:
            yield from self._maybe_block(state, "us.tollfree_to_tollfree", number,
                                         {"destination_type": "toll_free"}, cdr,
                                         f"Toll-free caller ID {number} called a toll-free number; use a "
                                         "geographic DID for calls to toll-free numbers.")
        if cli.number_type == "TOLL_FREE" and dest.valid and dest.calling_code != cli.calling_code:
            yield from self._maybe_alert(state, "tollfree.international", number, {}, cdr,
                                         f"Toll-free caller ID {number} was presented on a call to +"
                                         f"{dest.calling_code} ({dest.region}); toll-free numbers are national.")
        yield from self._australia(cdr, cli, dest, state)
        if cli.uk_prohibited:
            yield from self._maybe_block(state, "uk.cli_not_permitted", number, {}, cdr,
                                         f"Caller ID {number} is a UK premium-rate or 087x number, which "
                                         "Ofcom does not allow as a caller ID.")
        yield from self._french_daily_limit(cdr, cli, state)
        yield from self._cnam(cdr, cli, state)

    def _australia(self, cdr: Cdr, cli: NumberInfo, dest: NumberInfo, state: StateStore) -> Iterator[Decision]:
        number = cli.e164 or cdr.caller_id
        if cli.au_receive_only:
            yield from self._maybe_block(state, "au.cli_not_permitted", number, {}, cdr,
                                         f"Caller ID {number} is an Australian 13/1300/1800/1900 number, "
                                         "which is receive-only and cannot be presented.")
            return
        if not (dest.valid and dest.calling_code == 61):
            return
        if cli.toll_free:
            why = "a toll-free number"
        elif self.inventory is not None and not self.inventory.owns(number):
            why = "not a number the sender has claimed or ported"
        else:
            return
        yield from self._maybe_block(state, "au.cli_not_permitted", number, {"destination_country": "AU"}, cdr,
                                     f"Caller ID {number} is {why}; Australian carriers require a "
                                     "provider-issued DID on calls to Australia.")

    def _french_daily_limit(self, cdr: Cdr, cli: NumberInfo, state: StateStore) -> Iterator[Decision]:
        rule = self.pack.get("fr.daily_limit")
        if rule is None or cli.calling_code != 33 or cli.e164 is None or self._is_npv(cli):
            return
        number = cli.e164
        window = window_of(rule, cdr.started_at)
        count_key = f"{number}|{rule.id}|{window.key}"
        count = (state.get("counts", count_key) or 0) + 1
        state.set("counts", count_key, count)
        for threshold in rule.thresholds:
            if count < threshold.at:
                break
            message = (f"French caller ID {number} (not NPV) has made {count} calls on {window.key} "
                       f"({rule.timezone}); ")
            if threshold.kind == "block":
                yield from self._timed_block(state, rule, threshold.severity, number, cdr, window, count,
                                             threshold.at, message + f"blocked until {window.key} ends "
                                             "to stay within the operators' daily cap.")
            else:
                yield from self._window_alert(state, rule, threshold.severity, number, {}, cdr, window, count,
                                              threshold.at, message + "the operators' daily cap is near.")

    def _is_npv(self, cli: NumberInfo) -> bool:
        entry = self.inventory.get(cli.e164) if self.inventory is not None else None
        if entry is not None and entry.npv is not None:
            return entry.npv
        return cli.fr_npv

    def _cnam(self, cdr: Cdr, cli: NumberInfo, state: StateStore) -> Iterator[Decision]:
        if self.inventory is None or cli.region not in NANP_CNAM_REGIONS or cli.toll_free:
            return
        entry = self.inventory.get(cli.e164)
        if entry is None or entry.cnam:
            return
        yield from self._maybe_alert(state, "us.cnam_missing", cli.e164 or "", {}, cdr,
                                     f"Caller ID {cli.e164} has no CNAM registered; calls without a "
                                     "caller name are more likely to be labelled spam.")

    # -- spam-label risk -------------------------------------------------------------------------

    def _risk_score(self, cdr: Cdr, number: str, state: StateStore) -> RiskScore:
        """Add the call to the CLI's rolling 24 h and score it at the call's own time (event time)."""
        stored = state.get("risk", number)
        if isinstance(stored, RiskState):
            risk = stored
        elif stored:
            risk = RiskState.from_dict(stored, self.risk_config)
        else:
            risk = RiskState(self.risk_config)
        destination_key = hashlib.blake2b(strip_separators(cdr.destination).encode(), digest_size=8).hexdigest()
        risk.add(cdr.started_at, cdr.answered, cdr.duration_s, cdr.sip_code, cdr.attestation, destination_key)
        state.set("risk", number, risk)
        return risk.score_latest()

    def _risk_alerts(self, cdr: Cdr, number: str, risk: RiskScore, state: StateStore) -> Iterator[Decision]:
        rule = self.pack.get("spam.label_risk")
        if rule is None:
            return
        window = window_of(rule, cdr.started_at)
        breakdown = ", ".join(f"{name} {points:g}" for name, points in risk.factors.items() if points)
        for threshold in rule.thresholds:
            if risk.score < threshold.at:
                break
            message = (f"Spam-label risk of caller ID {number} is {risk.score:g}/100 over the last 24 h "
                       f"({breakdown}); analytics engines are likely to label its calls.")
            yield from self._window_alert(state, rule, threshold.severity, number, {}, cdr, window,
                                          int(risk.inputs.get("calls_24h", 0)), threshold.at, message)

    # -- inbound -----------------------------------------------------------------------------

    def _callback_rules(self, cdr: Cdr, dest: NumberInfo, state: StateStore) -> Iterator[Decision]:
        if self.inventory is None or cdr.answered or dest.calling_code != 33 or dest.e164 is None:
            return
        if self.inventory.get(dest.e164) is None:
            return
        yield from self._maybe_alert(state, "fr.callback_unanswered", dest.e164, {}, cdr,
                                     f"A callback to French caller ID {dest.e164} went unanswered; a "
                                     "presented number must let the called person reach the caller.")

    # -- emitting decisions once ---------------------------------------------------------------

    def _maybe_alert(self, state: StateStore, rule_id: str, caller_id: str, scope: dict[str, str],
                     cdr: Cdr, message: str) -> Iterator[Decision]:
        rule = self.pack.get(rule_id)
        if rule is None or rule.severity is None:
            return
        window = window_of(rule, cdr.started_at)
        yield from self._window_alert(state, rule, rule.severity, caller_id, scope, cdr, window, 1, None, message)

    def _window_alert(self, state: StateStore, rule: Rule, severity: str, caller_id: str,
                      scope: dict[str, str], cdr: Cdr, window: Window, count: int,
                      threshold: float | None, message: str) -> Iterator[Decision]:
        fired = f"{caller_id}|{rule.id}|{severity}|{scope_key(scope)}|{window.key}"
        if state.get("fired", fired):
            return
        state.set("fired", fired, 1)
        yield Decision(
            id=decision_id("alert", rule.id, severity, caller_id, scope_key(scope), window.key),
            kind="alert", rule=rule.id, severity=severity, caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope=scope, until=window.end, count=count,
            threshold=threshold, message=message, source=rule.source,
        )

    def _maybe_block(self, state: StateStore, rule_id: str, caller_id: str, scope: dict[str, str],
                     cdr: Cdr, message: str) -> Iterator[Decision]:
        """A standing block: once per (rule, caller ID, scope) until its unblock."""
        rule = self.pack.get(rule_id)
        if rule is None or rule.severity is None:
            return
        key = block_key(caller_id, rule.id, scope)
        if state.get("blocks", key) is not None:
            return
        episode = (state.get("episodes", key) or 0) + 1
        state.set("episodes", key, episode)
        decision = Decision(
            id=decision_id("block", rule.id, caller_id, scope_key(scope), str(episode)),
            kind="block", rule=rule.id, severity=rule.severity, caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope=scope, until=None, count=1, threshold=None,
            message=message, source=rule.source,
        )
        state.set("blocks", key, decision.to_dict())
        yield decision

    def _timed_block(self, state: StateStore, rule: Rule, severity: str, caller_id: str, cdr: Cdr,
                     window: Window, count: int, threshold: float, message: str) -> Iterator[Decision]:
        """A block with `until`: once per window, lifted when event time or the clock passes `until`."""
        fired = f"{caller_id}|{rule.id}|{severity}|{{}}|{window.key}|block"
        if state.get("fired", fired):
            return
        state.set("fired", fired, 1)
        decision = Decision(
            id=decision_id("block", rule.id, severity, caller_id, "{}", window.key),
            kind="block", rule=rule.id, severity=severity, caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope={}, until=window.end, count=count,
            threshold=threshold, message=message, source=rule.source,
        )
        key = decision.block_key
        state.set("blocks", key, decision.to_dict())
        timed = dict(state.get("timed", caller_id) or {})
        timed[key] = window.end.timestamp()
        state.set("timed", caller_id, timed)
        if self._next_due is None or window.end < self._next_due:
            self._next_due = window.end
        yield decision

    # -- lifting blocks ------------------------------------------------------------------------

    def expire(self, now: datetime, state: StateStore, force: bool = False) -> list[Decision]:
        """Unblocks for every time-boxed block whose `until` is at or before `now`, oldest first.

        Without `force` the scan is skipped until the earliest `until` this engine set is due; the
        stream's wall-clock timer forces it, since partitions it took over carry blocks it never set.
        """
        if not force and (self._next_due is None or now < self._next_due):
            return []
        due: list[tuple[float, str, str]] = []
        upcoming: list[float] = []
        now_ts = now.timestamp()
        for subject, timed in state.items("timed"):
            for key, until in timed.items():
                if until <= now_ts:
                    due.append((until, subject, key))
                else:
                    upcoming.append(until)
        self._next_due = datetime.fromtimestamp(min(upcoming), UTC) if upcoming else None
        decisions = []
        for _until, subject, key in sorted(due):
            decisions.extend(self._unblock_timed(state, subject, key))
        return decisions

    def expire_subject(self, subject: str, now: datetime, state: StateStore) -> list[Decision]:
        """Unblocks for one subject's time-boxed blocks due by `now` (in that subject's partition)."""
        timed = state.get("timed", subject)
        if not timed:
            return []
        due = sorted((until, key) for key, until in timed.items() if until <= now.timestamp())
        decisions = []
        for _until, key in due:
            decisions.extend(self._unblock_timed(state, subject, key))
        return decisions

    def _unblock_timed(self, state: StateStore, subject: str, key: str) -> list[Decision]:
        timed = dict(state.get("timed", subject) or {})
        timed.pop(key, None)
        if timed:
            state.set("timed", subject, timed)
        else:
            state.delete("timed", subject)
        block = state.get("blocks", key)
        if block is None:
            return []
        state.delete("blocks", key)
        until = datetime.fromisoformat(block["until"].replace("Z", "+00:00"))
        return [self._unblock(block, until, f"Block of {block['caller_id']} by {block['rule']} ended at "
                                            f"{block['until']}: the window is over.")]

    def lift(self, state: StateStore, key: str, at: datetime, reason: str) -> list[Decision]:
        """End an active block now (operator's clear, or an inventory change removed its cause)."""
        block = state.get("blocks", key)
        if block is None:
            return []
        state.delete("blocks", key)
        if block.get("until"):
            timed = dict(state.get("timed", block["caller_id"]) or {})
            timed.pop(key, None)
            if timed:
                state.set("timed", block["caller_id"], timed)
            else:
                state.delete("timed", block["caller_id"])
        return [self._unblock(block, at, reason)]

    def stale_inventory_blocks(self, state: StateStore) -> list[str]:
        """Keys of standing blocks whose cause the current inventory no longer gives."""
        keys = []
        for key, block in state.items("blocks"):
            if self._cause_removed(block):
                keys.append(key)
        return keys

    def _cause_removed(self, block: dict) -> bool:
        number, rule = block["caller_id"], block["rule"]
        if rule == "cli.not_authorized":
            return self.inventory is None or self.inventory.authorises(number, block.get("tenant"))
        if rule == "au.cli_not_permitted" and block["scope"] == {"destination_country": "AU"}:
            cli = classify(number)
            return not cli.toll_free and (self.inventory is None or self.inventory.owns(number))
        return False

    @staticmethod
    def _unblock(block: dict, at: datetime, message: str) -> Decision:
        return Decision(
            id=decision_id("unblock", block["id"]),
            kind="unblock", rule=block["rule"], severity=block["severity"], caller_id=block["caller_id"],
            call_id=None, tenant=block.get("tenant"), at=at, scope=dict(block["scope"]),
            until=None if block.get("until") is None else at, count=block.get("count", 1),
            threshold=block.get("threshold"), message=message, source=block.get("source", ""),
        )
