"""The rule engine: one implementation of every rule's emission policy, used by `replay` and the stream.

It is a pure function of (record, the record's subject state): no clock, no I/O. Time comes from the
records (event time) or from the caller (`expire_subject(now)`). The rules themselves are checks in
the registry (`rules/registry.py`, `rules/packs/*.py`); this module only routes a record to the
checks that apply and turns their findings into decisions, once per window or once per block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rules.cdr import Cdr
from rules.context import Call
from rules.decision import Decision, block_key, decision_id, resolve_of, scope_key, unblock_of
from rules.inventory import Inventory
from rules.numbers import NumberInfo, classify, classify_with_region, subject_of
from rules.pack import Rule, RulePack
from rules.registry import Finding, RuleSpec, registry
from rules.state import PRUNE_EVERY_S, DictState, SubjectState, call_key, fired_key
from rules.tally import Tally
from rules.threshold import Reading, clear_plan, cleared_text, crossed, declared_spec, projected, span_text, window_at
from rules.window import Windows, windows_for

DEFAULT_DEDUP_SECONDS = 48 * 3600
UNCLASSIFIED = classify("")


class Outcome:
    """What the engine made of one record: its decisions and the classification it used."""

    __slots__ = ("caller", "daily_cap", "day_count", "decisions", "destination", "follow", "lifted", "status",
                 "subject")

    def __init__(self, status: str, subject: str) -> None:
        self.status = status  # judged | duplicate | internal
        self.subject = subject
        self.decisions: list[Decision] = []
        self.caller: NumberInfo | None = None
        self.destination: NumberInfo | None = None  # when a rule classified it (else not parsed)
        self.day_count: int | None = None  # the CLI's calls in its current day, against `daily_cap`
        self.daily_cap: float | None = None
        self.follow: list[str] = []  # keys of keyed states this call is judged on next (`process_keyed`)
        self.lifted = 0  # the first `lifted` decisions are unblocks event time made due (not the call's own)


@dataclass(frozen=True)
class _Bound:
    """An enabled rule: its pack row, its registry entry and its window cache (one per zone and day)."""

    rule: Rule
    spec: RuleSpec
    windows: Windows | None


_Step = tuple[Callable[[Call, Rule], "Finding | None"], Rule, _Bound]  # what `_apply` runs: check, row, rule


class Engine:
    """Applies the enabled rules of a pack to CDRs, one subject state at a time."""

    def __init__(
        self,
        pack: RulePack,
        inventory: Inventory | None = None,
        default_region: str | None = None,
        dedup_seconds: int = DEFAULT_DEDUP_SECONDS,
        hash_key: bytes = b"",
    ) -> None:
        self.pack = pack
        self.hash_key = hash_key
        self.default_region = default_region.upper() if default_region else None
        self.dedup_seconds = dedup_seconds
        specs = registry()
        # Registered rules in the registry's order, then the threshold rules declared wholly in a pack.
        pairs = [(pack.rules[rule_id], spec) for rule_id, spec in specs.items() if rule_id in pack.rules]
        pairs += [(rule, declared_spec(rule)) for rule_id, rule in pack.rules.items() if rule_id not in specs]
        self._bound = [_Bound(rule, spec,
                              None if rule.window == "standing" else windows_for(rule.window, rule.timezone))
                       for rule, spec in pairs]
        self._by_id = {b.rule.id: b for b in self._bound}
        self._needs = sorted({name for b in self._bound for name in b.spec.needs})
        self._subjects: dict[str, tuple[str, NumberInfo]] = {}
        self._block_keys: dict[tuple[str, ...], str] = {}
        self.inventory = inventory

    @property
    def inventory(self) -> Inventory | None:
        return self._inventory

    @inventory.setter
    def inventory(self, inventory: Inventory | None) -> None:
        """Set (or replace, as a push does) the inventory: the rules that need one run only with one."""
        self._inventory = inventory
        active = [b for b in self._bound if inventory is not None or b.spec.inventory != "required"]

        def steps(direction: str, cli: str | None = None) -> list[_Step]:
            return [(b.spec.check, b.rule, b) for b in active
                    if b.spec.direction == direction and cli in (None, b.spec.cli) and b.spec.keyed is None]

        # Keyed rules (outbound calls with a valid CLI): judged on the state their key names.
        self._keyed = [b for b in active if b.spec.keyed is not None]

        self._valid_cli = steps("outbound", "valid")
        self._invalid_cli = steps("outbound", "invalid")
        self._inbound = steps("inbound")

    # -- routing -----------------------------------------------------------------------------

    def subject(self, cdr: Cdr) -> str:
        """The number whose state a record touches: the presented CLI, or for inbound calls ours."""
        return self._route(cdr)[0]

    def _route(self, cdr: Cdr) -> tuple[str, NumberInfo]:
        if cdr.direction == "inbound":
            return subject_of(cdr.direction, cdr.caller_id, cdr.destination, self.default_region)
        cached = self._subjects.get(cdr.caller_id)
        if cached is None:
            cached = subject_of(cdr.direction, cdr.caller_id, cdr.destination)
            if len(self._subjects) > 262_144:
                self._subjects.clear()
            self._subjects[cdr.caller_id] = cached
        return cached

    def destination_info(self, cdr: Cdr) -> NumberInfo:
        return classify_with_region(cdr.destination, self.default_region)

    # -- the main entry point ------------------------------------------------------------------

    def process(self, cdr: Cdr, state: SubjectState) -> Outcome:
        """Judge one record against its subject's state: de-duplicate, lift the subject's blocks
        that are due, then apply the rules. `state` must be the state of `subject(cdr)`."""
        subject, info = self._route(cdr)
        return self._process(cdr, state, subject, info, cdr.started_at.timestamp())

    def _process(self, cdr: Cdr, state: SubjectState, subject: str, info: NumberInfo, now: float) -> Outcome:
        """`process` once the record is routed (`subject`, `info`) and its time read (`now`, epoch s)."""
        outcome = Outcome("judged", subject)
        if self._repeated(cdr, state, now):
            outcome.status = "duplicate"
            return outcome
        if (state.timed and min(state.timed.values()) <= now) or (state.clears and min(state.clears.values()) <= now):
            outcome.decisions.extend(self.expire_subject(state, cdr.started_at))
            outcome.lifted = len(outcome.decisions)
        direction = cdr.direction
        if direction == "outbound":
            outcome.caller = info
            call = Call(cdr, subject, info, self._inventory, state, self.default_region, self.hash_key, None, now)
            self._apply(self._valid_cli if info.valid else self._invalid_cli, call, outcome)
            if info.valid and self._keyed:
                for entry in self._keyed:
                    assert entry.spec.keyed is not None
                    key = entry.spec.keyed(call, entry.rule)
                    if key is not None and key not in outcome.follow:
                        outcome.follow.append(key)
            outcome.destination = call.destination_classified
            return outcome
        if direction == "internal":
            outcome.status = "internal"
            return outcome
        outcome.destination = info
        call = Call(cdr, subject, UNCLASSIFIED, self._inventory, state, self.default_region, self.hash_key, info, now)
        self._apply(self._inbound, call, outcome)
        return outcome

    def _repeated(self, cdr: Cdr, state: SubjectState, now: float) -> bool:
        """Whether `state` has seen this call within the de-duplication window (a redelivery); else
        remember it. Prunes the state's old entries first, at most every PRUNE_EVERY_S."""
        if now - state.pruned_at >= PRUNE_EVERY_S:
            state.prune(now, self.dedup_seconds)
        seen = call_key(cdr.call_id)
        first_seen = state.seen.get(seen)
        if first_seen is not None and abs(now - first_seen) <= self.dedup_seconds:
            return True
        state.seen[seen] = now
        return False

    def process_keyed(self, cdr: Cdr, key: str, state: SubjectState) -> Outcome:
        """The second step of a call some keyed rule applies to (`Outcome.follow`): the rules whose key
        is `key`, judged on the state of that key (de-duplicated on it, so a call forwarded twice counts
        once). Decisions are about the call's caller ID, as the first step's."""
        subject, info = self._route(cdr)
        outcome = Outcome("judged", subject)
        now = cdr.started_at.timestamp()
        if state.expires is not None and state.expires <= now:
            state.forget()
        if self._repeated(cdr, state, now):
            outcome.status = "duplicate"
            return outcome
        if state.clears and min(state.clears.values()) <= now:
            outcome.decisions.extend(self.expire_subject(state, cdr.started_at))
            outcome.lifted = len(outcome.decisions)
        call = Call(cdr, subject, info, self._inventory, state, self.default_region, self.hash_key, None, now)
        steps = [(b.spec.check, b.rule, b) for b in self._keyed
                 if b.spec.keyed is not None and b.spec.keyed(call, b.rule) == key]
        self._apply(steps, call, outcome)
        return outcome

    @property
    def needs(self) -> list[str]:
        """The optional record fields some enabled rule needs."""
        return self._needs

    def lacking(self, cdr: Cdr) -> list[str]:
        """The optional fields an enabled rule needs that this outbound record lacks (a purpose from the
        inventory's campaigns counts as given), for the run's summary."""
        lacking = []
        for name in self._needs:
            if name == "purpose":
                given = cdr.purpose is not None or (cdr.campaign is not None and self._inventory is not None
                                                    and cdr.campaign in self._inventory.campaigns)
            else:
                given = getattr(cdr, name) is not None
            if not given:
                lacking.append(name)
        return lacking

    def _apply(self, steps: list[_Step], call: Call, outcome: Outcome) -> None:
        for check, rule, entry in steps:
            finding = check(call, rule)
            if finding is None:
                continue
            if finding.usage is not None and outcome.day_count is None:
                outcome.day_count, outcome.daily_cap = finding.usage
            spec = entry.spec
            if spec.kind == "alert":
                self._alert(entry, entry.rule.severity or "", finding, None, call, outcome)
            elif spec.kind == "block":
                self._standing_block(entry, finding, call, outcome)
            elif finding.measure is not None and finding.measure.sliding:
                self._sliding(entry, finding, finding.measure, call, outcome)
            else:
                self._thresholds(entry, finding, call, outcome)
                if finding.measure is not None and finding.measure.eta is not None:
                    self._forecast(entry, finding, finding.measure.eta, call, outcome)

    # -- emission policies -------------------------------------------------------------------

    def _thresholds(self, entry: _Bound, finding: Finding, call: Call, outcome: Outcome) -> None:
        """Calendar windows: each level passed makes its alert once per window, its block until the window ends."""
        value = finding.value
        if value != value:  # NaN: a ratio without enough calls yet (min_calls)
            return
        below = finding.measure is not None and finding.measure.below
        for threshold in entry.rule.thresholds:
            if not crossed(below, value, threshold.at):
                break
            if threshold.kind == "block":
                self._timed_block(entry, threshold.severity, threshold.at, finding, call, outcome,
                                  lambda t=threshold: finding.text(t))
            else:
                self._alert(entry, threshold.severity, finding, threshold, call, outcome)

    def _alert(self, entry: _Bound, severity: str, finding: Finding, threshold: Any, call: Call,
               outcome: Outcome) -> None:
        """Once per (rule, severity, scope, window)."""
        assert entry.windows is not None
        window = entry.windows.at(call.at, call.cdr.started_at)
        scope = scope_key(finding.scope) if finding.scope else "{}"
        fired = fired_key(entry.rule.id, severity, scope, window.key)
        if fired in call.state.fired:
            return
        call.state.fired[fired] = window.end_ts
        caller_id = finding.subject or call.subject
        cdr = call.cdr
        outcome.decisions.append(Decision(
            id=decision_id("alert", entry.rule.id, severity, caller_id, scope, window.key),
            kind="alert", rule=entry.rule.id, severity=severity, caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope=dict(finding.scope), until=window.end,
            count=finding.count, threshold=None if threshold is None else threshold.at,
            message=finding.text(threshold), source=entry.rule.source,
        ))

    def _standing_block(self, entry: _Bound, finding: Finding, call: Call, outcome: Outcome) -> None:
        """Once per (rule, caller ID, scope) until its unblock; episodes keep the ids of later ones apart."""
        caller_id = finding.subject or call.subject
        # A CLI that breaks a block rule breaks it on every call: its key is made once (JSON of the scope).
        memo = (caller_id, entry.rule.id, *finding.scope.items())
        key = self._block_keys.get(memo)
        if key is None:
            if len(self._block_keys) >= 65_536:
                self._block_keys.clear()
            key = self._block_keys[memo] = block_key(caller_id, entry.rule.id, dict(finding.scope))
        state = call.state
        if key in state.blocks:
            return
        scope = dict(finding.scope)
        episode = state.episodes.get(key, 0) + 1
        state.episodes[key] = episode
        cdr = call.cdr
        decision = Decision(
            id=decision_id("block", entry.rule.id, caller_id, scope_key(scope), str(episode)),
            kind="block", rule=entry.rule.id, severity=entry.rule.severity or "", caller_id=caller_id,
            call_id=cdr.call_id, tenant=cdr.tenant, at=cdr.started_at, scope=scope, until=None,
            count=1, threshold=None, message=finding.text(None), source=entry.rule.source,
        )
        state.blocks[key] = decision.to_dict()
        outcome.decisions.append(decision)

    def _timed_block(self, entry: _Bound, severity: str, threshold: float, finding: Finding, call: Call,
                     outcome: Outcome, message: Callable[[], str]) -> None:
        """A block with `until`: once per window, lifted when event time or the clock passes `until`."""
        assert entry.windows is not None
        window = entry.windows.at(call.at, call.cdr.started_at)
        scope = scope_key(finding.scope) if finding.scope else "{}"
        fired = fired_key(entry.rule.id, severity, scope, window.key, block=True)
        state = call.state
        if fired in state.fired:
            return
        state.fired[fired] = window.end_ts
        cdr = call.cdr
        caller_id = finding.subject or call.subject
        decision = Decision(
            id=decision_id("block", entry.rule.id, severity, caller_id, scope, window.key),
            kind="block", rule=entry.rule.id, severity=severity, caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope=dict(finding.scope), until=window.end, count=finding.count,
            threshold=threshold, message=message(), source=entry.rule.source,
        )
        state.blocks[decision.block_key] = decision.to_dict()
        state.timed[decision.block_key] = window.end_ts
        outcome.decisions.append(decision)

    def _forecast(self, entry: _Bound, finding: Finding, eta: float, call: Call, outcome: Outcome) -> None:
        """A `forecast: true` rule's warning: once per window and scope, with the projected time."""
        assert entry.windows is not None
        rule, state, cdr = entry.rule, call.state, call.cdr
        window = entry.windows.at(call.at, cdr.started_at)
        scope = scope_key(finding.scope) if finding.scope else "{}"
        fired = fired_key(rule.id, "forecast", scope, window.key)
        if fired in state.fired:
            return
        state.fired[fired] = window.end_ts
        caller_id = finding.subject or call.subject
        spec = rule.config
        zone_name = "UTC" if rule.window == "utc_day" else rule.timezone
        who = (f"Caller ID {caller_id}" if spec.key.startswith("cli")
               else f"{spec.key.title()} {finding.scope[spec.key]}")
        outcome.decisions.append(Decision(
            id=decision_id("forecast", rule.id, caller_id, scope, window.key),
            kind="alert", rule=rule.id, severity="warning", caller_id=caller_id, call_id=cdr.call_id,
            tenant=cdr.tenant, at=cdr.started_at, scope=dict(finding.scope), until=window.end, count=finding.count,
            threshold=spec.block_at,
            message=(f"{who} will reach {spec.block_at:g} calls at about {projected(eta, zone_name)} at its pace "
                     f"of the last {span_text(spec.forecast_over)} ({finding.count} so far on {window.key}): "
                     f"forecast of {rule.id}."),
            source=rule.source, forecast_at=datetime.fromtimestamp(int(eta), UTC),
        ))

    def _sliding(self, entry: _Bound, finding: Finding, reading: Reading, call: Call, outcome: Outcome) -> None:
        """Sliding windows: a level fires when passed (not within `min_sleep` of its last firing); its alert
        resolves, its block is lifted, once the measure has been back past `clear_at` for `clear_after`; a
        block lasts `for` at most. One decision in force per level and key.

        A level in force has the instant it clears if no call comes (`clear_plan`) in `state.clears`:
        event time (the next record of any key, in replay and the stream alike) or the idle stream's clock
        clears it then (`expire_subject`); a call before that instant plans again, after counting."""
        rule, state, cdr, tally = entry.rule, call.state, call.cdr, reading.tally
        spec = rule.config
        now, value, defined = call.at, finding.value, reading.defined
        scope = dict(finding.scope)
        for index, level in enumerate(rule.thresholds):
            active = tally.active.get(index)
            if active is not None and level.kind == "block":
                held = state.blocks.get(active["key"])
                if held is None or held["id"] != active["id"]:  # ended by time, or cleared by an operator
                    del tally.active[index]
                    tally.back.pop(index, None)
                    state.clears.pop(f"{reading.name}|{index}", None)
                    active = None
            if active is not None:
                since = tally.back.get(index)
                self._plan_clear(rule, index, reading.name, state, tally, now,
                                 since if since is not None and since <= now else None, outcome)
                continue
            if not defined or not crossed(spec.below, value, level.at):
                continue
            last = tally.last.get(index)
            if last is not None and now - last < spec.min_sleep:
                continue
            tally.last[index] = now
            caller_id = finding.subject or call.subject
            until = None
            if level.kind == "block" and spec.block_for:
                until = datetime.fromtimestamp(now + spec.block_for, UTC)
            decision = Decision(
                id=decision_id(level.kind, rule.id, level.severity, caller_id, scope_key(scope), repr(now)),
                kind=level.kind, rule=rule.id, severity=level.severity, caller_id=caller_id, call_id=cdr.call_id,
                tenant=cdr.tenant, at=cdr.started_at, scope=scope, until=until, count=finding.count,
                threshold=level.at, message=finding.text(level), source=rule.source,
            )
            if level.kind == "block":
                state.blocks[decision.block_key] = decision.to_dict()
                if until is not None:
                    state.timed[decision.block_key] = until.timestamp()
                tally.active[index] = {"id": decision.id, "key": decision.block_key}
            else:
                tally.active[index] = decision.to_dict()
            outcome.decisions.append(decision)
            self._plan_clear(rule, index, reading.name, state, tally, now, None, outcome)

    def _plan_clear(self, rule: Rule, index: int, name: str, state: SubjectState, tally: Tally, now: float,
                    since: float | None, outcome: Outcome) -> None:
        """After the key's call at `now`: clear the level now if it is due, else note when it will be."""
        slot = f"{name}|{index}"
        level = rule.thresholds[index]
        spec = rule.config
        plan = clear_plan(spec, tally, level.at if spec.clear_at is None else spec.clear_at, now, since)
        if plan is None:
            tally.back.pop(index, None)
            state.clears.pop(slot, None)
        elif plan[1] <= now:  # back now and nothing to wait for (clear_after 0)
            state.clears.pop(slot, None)
            outcome.decisions.extend(self._clear_level(rule, index, state, tally, now))
        else:
            tally.back[index], state.clears[slot] = plan

    def _clear_level(self, rule: Rule, index: int, state: SubjectState, tally: Tally, at: float) -> list[Decision]:
        """A level's `resolve` (an alert) or `unblock` (a block) at event time `at`, its window as it then is."""
        active = tally.active.pop(index, None)
        tally.back.pop(index, None)
        if active is None:
            return []
        level = rule.thresholds[index]
        decision = active if level.kind == "alert" else state.blocks.get(active["key"])
        if decision is None or decision["id"] != active["id"]:  # a block already ended by time or an operator
            return []
        value, calls = window_at(rule.config, tally, at)
        message = cleared_text(rule.config, rule, level, decision, value, calls)
        when = datetime.fromtimestamp(at, UTC)
        if level.kind == "block":
            return self.lift(state, active["key"], when, message)
        return [resolve_of(active, when, message)]

    def _clear_slot(self, state: SubjectState, slot: str, at: float) -> list[Decision]:
        """The clear `state.clears[slot]` planned, due at `at` (a rule since removed clears nothing)."""
        name, _, index = slot.rpartition("|")
        entry = self._by_id.get(name.split("|", 1)[0])
        tally = state.tallies.get(name)
        if entry is None or tally is None:
            return []
        return self._clear_level(entry.rule, int(index), state, tally, at)

    # -- lifting blocks ------------------------------------------------------------------------

    def expire_subject(self, state: SubjectState, now: datetime, clears: bool = True) -> list[Decision]:
        """Unblocks for one subject's time-boxed blocks due by `now` and (`clears`) the clears of its
        threshold levels due by then, in time order. Without `clears` (the stream's wall clock), nothing
        after a planned clear: event time makes the clear first, and what follows with it."""
        now_ts = now.timestamp()
        if state.expires is not None and state.expires <= now_ts:
            state.forget()
        if clears:
            due = [(until, 0, key) for key, until in state.timed.items() if until <= now_ts]
            due += [(at, 1, slot) for slot, at in state.clears.items() if at <= now_ts]
        else:
            limit = min(state.clears.values()) if state.clears else now_ts + 1.0
            due = [(until, 0, key) for key, until in state.timed.items() if until <= now_ts and until < limit]
        due.sort()
        decisions = []
        for at_ts, kind, key in due:
            if kind == 1:
                del state.clears[key]
                decisions.extend(self._clear_slot(state, key, at_ts))
                continue
            if state.timed.pop(key, None) is None:  # lifted by a clear just before
                continue
            block = state.blocks.pop(key, None)
            if block is None:
                continue
            until = datetime.fromtimestamp(at_ts, UTC)
            decisions.append(unblock_of(block, until, f"Block of {block['caller_id']} by {block['rule']} ended "
                                                      f"at {block['until']}: the window is over."))
        return decisions

    def lift(self, state: SubjectState, key: str, at: datetime, reason: str) -> list[Decision]:
        """End an active block now (operator's clear, or an inventory change removed its cause)."""
        state.timed.pop(key, None)
        block = state.blocks.pop(key, None)
        return [] if block is None else [unblock_of(block, at, reason)]

    def expire(self, store: DictState, now: datetime) -> list[Decision]:
        """Unblocks for every subject of an in-memory store whose time-boxed blocks are due by `now`."""
        decisions = []
        for subject in store.pop_due(now.timestamp()):
            state = store.subjects.get(subject)
            if state is None:
                continue
            decisions.extend(self.expire_subject(state, now))
            if state.is_empty():
                del store.subjects[subject]  # an expired keyed state: forgotten
                continue
            due = state.due()
            if due is not None:
                store.note_due(subject, due)
        decisions.sort(key=lambda decision: (decision.at, decision.id))  # one order, however partitioned
        return decisions

    def judge(self, cdr: Cdr, store: DictState, follow: bool = True) -> Outcome:
        """`process` over an in-memory store (replay, tests, benchmarks): event time first lifts every
        subject's blocks that are due, then the record is judged against its subject's state, and
        (`follow`) on the keyed states its `Outcome.follow` names, in the same store."""
        now = cdr.started_at.timestamp()
        lifted = self.expire(store, cdr.started_at) if store.has_due(now) else None
        subject, info = self._route(cdr)
        state = store.get(subject)
        outcome = self._process(cdr, state, subject, info, now)
        if follow:
            for key in outcome.follow:
                keyed = store.get(key)
                outcome.decisions.extend(self.process_keyed(cdr, key, keyed).decisions)
                due = keyed.due()
                if due is not None:
                    store.note_due(key, due)
        decisions = outcome.decisions
        if state.clears or (decisions and any(d.kind == "block" and d.until is not None for d in decisions)):
            due = state.due()
            if due is not None:
                store.note_due(subject, due)
        if lifted:
            decisions[:0] = lifted
            outcome.lifted += len(lifted)
        return outcome

    def stale_blocks(self, state: SubjectState) -> list[str]:
        """Keys of this subject's blocks whose cause the current inventory no longer gives."""
        keys = []
        for key, block in state.blocks.items():
            entry = self._by_id.get(block["rule"])
            spec = entry.spec if entry is not None else registry().get(block["rule"])
            if spec is not None and spec.cause_removed is not None and spec.cause_removed(block, self.inventory):
                keys.append(key)
        return keys

