"""`cidwatch simulate`: realistic canonical CDR traffic, with patterns that trip every rule.

Why a simulator: the stream has to be watched doing its job before anyone trusts it with real
switches, and a CDR file is not a stream. This one behaves like a contact centre's switches: three
tenants and a few hundred caller IDs (CLIs) with ordinary agent traffic, plus a handful of CLIs that
break each rule the way real dialers do. Records arrive in call-end order, because a switch writes a
CDR when the call ends, not when it starts.

Everything is a pure function of the seed and the simulated start, so tests replay the same traffic
through the engine: `sim_inventory(seed)` is the numbers the fleet may present and
`generate(seed, rate, duration, speed, start)` the records with their emission times. The
rule-tripping numbers change with the seed, so a second run against a worker that remembers the
first one (standing blocks, alerts already sent today) still trips every rule.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from cidwatch.cli import CliError
from cidwatch.kafka_options import add_kafka_arguments, kafka_settings
from cidwatch.produce import record_key
from rules.inventory import Inventory, InventoryEntry
from rules.numbers import NumberInfo, classify
from streams.settings import Settings

PARIS = ZoneInfo("Europe/Paris")

# (emission time in simulated seconds after the start, key, value): what `generate` yields.
Emission = tuple[float, bytes, bytes]

# --- the French CLI that runs past the daily cap ----------------------------------------------
# One call every FR_INTERVAL_S simulated seconds (a predictive dialer on one CLI), FR_CALLS_BEFORE
# of them before Paris midnight (the 200th warns, the 250th blocks), then FR_AFTER_S more seconds
# of calls in the new Paris day, whose first record lifts the block by event time.
FR_INTERVAL_S = 8.0
FR_CALLS_BEFORE = 256
FR_AFTER_S = 600.0
FR_LEAD_S = 60.0  # simulated seconds of ordinary traffic before its first call

DAY_S = 86_400.0
FR_NORMAL_MAX_PER_DAY = 96  # an ordinary non-NPV French CLI: well under the 200 warning
CALLBACK_SHARE = 0.03  # ordinary inbound callbacks (answered) among the fleet's calls
MALFORMED_SHARE = 0.004
DUPLICATE_SHARE = 0.003
FORCED_MALFORMED = {25: "not_json", 60: "missing_call_id", 95: "bad_type"}  # a short run shows the DLQ too

CARRIERS = ("sipline", "voxbridge", "telcore")
CAMPAIGNS = ("renewals", "collections", "appointments", "surveys", "winback")
US_AREA_CODES = ("212", "213", "312", "415", "617", "646", "702", "713", "718", "202", "305", "404", "503", "206")
US_EASTERN_AREA_CODES = ("212", "617", "646", "718", "202", "305", "404")  # one zone each: America/New_York
EASTERN = ZoneInfo("America/New_York")
US_EVENING_CUTOFF = clock_time(21)  # 47 CFR 64.1200(c)(1): no solicitation after 9 p.m. at the called party
INVALID_FIXED = ("anonymous", "0207 183 8750", "+4402071838750")


@dataclass(frozen=True)
class Line:
    """One CLI of the simulated fleet: who presents it and how its calls go."""

    number: str
    tenant: str
    country: str  # FR, US, GB, AU: where its ordinary calls go
    source: str = "claimed"
    cnam: str | None = None
    answer_rate: float = 0.45
    campaign: str = "renewals"

    def entry(self) -> InventoryEntry:
        return InventoryEntry(number=self.number, source=self.source, cnam=self.cnam, tenant=self.tenant)


@dataclass(frozen=True)
class Plan:
    """The numbers of one seed: the ordinary fleet and one CLI (or a few) per rule to trip."""

    seed: int
    fleet: tuple[Line, ...]
    rogue_fr: Line  # a French non-NPV CLI past the daily cap
    tollfree_domestic: Line  # a US toll-free CLI calling toll-free numbers
    tollfree_abroad: Line  # a US toll-free CLI calling Australia: toll-free abroad, and not permitted in AU
    au_1300: Line  # a receive-only Australian number, not permitted as a CLI
    uk_0870: Line  # a UK 0870 number, not permitted as a CLI
    no_cnam: Line  # a US number listed without a CNAM
    callback_fr: Line  # a French number whose callbacks go unanswered
    robocaller: Line  # hundreds of short calls, 608s, attestation C
    unauthorised: Line  # presented by globex, listed nowhere: not authorised
    invalid: tuple[str, ...]  # caller IDs that are not valid E.164
    self_caller: Line  # test calls to the tenant's own number, presenting that same number
    robo_fr: Line  # automated calls presenting a French geographic number that is not an NPV
    es_mobile: Line  # telemarketing presenting a Spanish mobile number
    spoof_gb: Line  # a UK landline presented on calls to the UK that enter the network in the Netherlands
    redialer: tuple[Line, ...]  # telemarketing lines of one tenant redialing one French consumer
    us_dialer: Line  # telemarketing to the US East Coast all evening, on past 21:00 there

    @property
    def listed(self) -> tuple[Line, ...]:
        """Every line in the inventory (all but the unauthorised one)."""
        return (*self.fleet, self.rogue_fr, self.tollfree_domestic, self.tollfree_abroad, self.au_1300,
                self.uk_0870, self.no_cnam, self.callback_fr, self.robocaller, self.self_caller, self.robo_fr,
                self.es_mobile, self.spoof_gb, *self.redialer, self.us_dialer)


# --- numbers ----------------------------------------------------------------------------------


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _draw(rng: random.Random, used: set[str], make: Callable[[], str], ok: Callable[[NumberInfo], bool]) -> str:
    """A valid, unused number from `make` that `ok` accepts (phonenumbers decides validity)."""
    for _ in range(1000):
        number = make()
        info = classify(number)
        if info.valid and info.e164 == number and number not in used and ok(info):
            used.add(number)
            return number
    raise RuntimeError("could not draw a valid number")  # a bad pattern in this module, not bad luck


def _us_number(rng: random.Random, area_codes: tuple[str, ...] = US_AREA_CODES) -> str:
    return f"+1{rng.choice(area_codes)}{rng.randint(2, 9)}{_digits(rng, 6)}"


NUMBER_MAKERS: dict[str, tuple[Callable[[random.Random], str], Callable[[NumberInfo], bool]]] = {
    "fr_npv": (lambda r: f"+33{r.choice(('948', '949', '162', '163'))}{_digits(r, 6)}", lambda i: i.fr_npv),
    "fr_geo": (lambda r: f"+33{r.choice('12345')}{r.choice('45')}{_digits(r, 7)}", lambda i: not i.fr_npv),
    "fr_mobile": (lambda r: f"+336{_digits(r, 8)}", lambda i: i.number_type == "MOBILE"),
    "us": (_us_number, lambda i: i.region == "US" and not i.toll_free),
    "us_east": (lambda r: _us_number(r, US_EASTERN_AREA_CODES), lambda i: i.region == "US" and not i.toll_free),
    "us_tollfree": (lambda r: f"+1{r.choice(('800', '833', '844', '855', '866', '877', '888'))}"
                              f"{r.randint(2, 9)}{_digits(r, 6)}", lambda i: i.nanp_toll_free),
    "gb": (lambda r: f"+4420{r.choice('378')}{_digits(r, 7)}", lambda i: not i.uk_prohibited),
    "gb_0870": (lambda r: f"+44870{_digits(r, 7)}", lambda i: i.uk_prohibited),
    "au": (lambda r: f"+61{r.choice('23')}9{_digits(r, 7)}", lambda i: not i.au_receive_only),
    "au_1300": (lambda r: f"+611300{_digits(r, 6)}", lambda i: i.au_receive_only),
    "es_mobile": (lambda r: f"+346{_digits(r, 8)}", lambda i: i.number_type == "MOBILE"),
}

# The ordinary fleet: (tenant, kind of number, country its calls go to, how many, CNAM).
FLEET = (
    ("acme", "fr_npv", "FR", 60, None),
    ("acme", "fr_geo", "FR", 30, None),
    ("acme", "us", "US", 40, "ACME CORP"),
    ("globex", "us", "US", 60, "GLOBEX"),
    ("globex", "gb", "GB", 40, None),
    ("initech", "au", "AU", 40, None),
    ("initech", "fr_npv", "FR", 30, None),
)


def _number(rng: random.Random, used: set[str], kind: str) -> str:
    make, ok = NUMBER_MAKERS[kind]
    return _draw(rng, used, lambda: make(rng), ok)


def _line(rng: random.Random, used: set[str], tenant: str, kind: str, country: str, cnam: str | None,
          **extra: Any) -> Line:
    fields = {"source": "ported" if rng.random() < 0.2 else "claimed", "cnam": cnam,
              "answer_rate": round(rng.uniform(0.30, 0.60), 3), "campaign": f"{tenant}-{rng.choice(CAMPAIGNS)}"}
    fields.update(extra)
    return Line(number=_number(rng, used, kind), tenant=tenant, country=country, **fields)


@lru_cache(maxsize=16)
def sim_plan(seed: int) -> Plan:
    """The fleet and the rule-tripping numbers of `seed` (deterministic)."""
    rng = random.Random(f"cidwatch-sim-plan:{seed}")
    used: set[str] = set()
    fleet = tuple(_line(rng, used, tenant, kind, country, cnam)
                  for tenant, kind, country, n, cnam in FLEET for _ in range(n))
    return Plan(
        seed=seed,
        fleet=fleet,
        rogue_fr=_line(rng, used, "acme", "fr_geo", "FR", None, campaign="acme-winback", answer_rate=0.25),
        tollfree_domestic=_line(rng, used, "acme", "us_tollfree", "US", "ACME CORP"),
        tollfree_abroad=_line(rng, used, "globex", "us_tollfree", "AU", "GLOBEX"),
        au_1300=_line(rng, used, "initech", "au_1300", "AU", None),
        uk_0870=_line(rng, used, "globex", "gb_0870", "GB", None),
        no_cnam=_line(rng, used, "acme", "us", "US", None),
        callback_fr=_line(rng, used, "acme", "fr_geo", "FR", None),
        robocaller=_line(rng, used, "globex", "us", "US", "GLOBEX", campaign="globex-blast", answer_rate=0.08),
        unauthorised=_line(rng, used, "globex", "us", "US", None),
        invalid=(*INVALID_FIXED, f"0207 183 {_digits(rng, 4)}", f"+440207183{_digits(rng, 4)}"),
        self_caller=_line(rng, used, "initech", "au", "AU", None),  # drawn before the lines below: the
        # numbers of earlier releases' seeds stay
        robo_fr=_line(rng, used, "globex", "fr_geo", "FR", None, campaign="globex-reminders"),
        es_mobile=_line(rng, used, "globex", "es_mobile", "ES", None, campaign="globex-ventas"),
        spoof_gb=_line(rng, used, "globex", "gb", "GB", None),
        redialer=tuple(_line(rng, used, "acme", "fr_npv", "FR", None, campaign="acme-winback") for _ in range(3)),
        us_dialer=_line(rng, used, "globex", "us", "US", "GLOBEX", campaign="globex-evening"),
    )


def sim_inventory(seed: int) -> Inventory:
    """The inventory the simulated fleet is allowed to present: all of it but the unauthorised CLI."""
    return Inventory(line.entry() for line in sim_plan(seed).listed)


def inventory_yaml(inventory: Inventory) -> str:
    """The inventory as the YAML `--inventory` and `cidwatch inventory push` read."""
    rows = [{k: v for k, v in entry.to_dict().items() if v is not None} for entry in inventory.entries.values()]
    header = "# Generated by `cidwatch simulate`: the numbers the simulated tenants may present.\n"
    return header + yaml.safe_dump({"numbers": rows}, sort_keys=False, default_flow_style=None, width=200)


# --- the simulated clock ----------------------------------------------------------------------


def next_paris_midnight(after: datetime) -> datetime:
    """The first Europe/Paris midnight strictly after `after`, in UTC (DST-aware)."""
    day = after.astimezone(PARIS).date() + timedelta(days=1)
    return datetime.combine(day, clock_time(0), tzinfo=PARIS).astimezone(UTC)


def fr_lead_s() -> float:
    """Simulated seconds from the start to Paris midnight in a default run: the French CLI's ramp."""
    return FR_LEAD_S + FR_CALLS_BEFORE * FR_INTERVAL_S


def default_start(now: datetime) -> datetime:
    """Shortly before a Paris midnight, so that the French CLI's 250th call comes before it and its
    later calls after it (the unblock shows within the run).

    The midnight is the first one at least the ramp away from `now`: the simulated clock never starts
    in the past, so the unblock comes from event time rather than from the worker's wall-clock timer.
    """
    lead = timedelta(seconds=fr_lead_s())
    return (next_paris_midnight(now + lead) - lead).replace(microsecond=0)


# --- calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a call went: ring time before answer or give-up, talk time, SIP code."""

    answered: bool
    ring_s: float
    talk_s: float
    sip_code: int


def agent_outcome(rng: random.Random, answer_rate: float) -> Outcome:
    """An ordinary call: answered calls talk for minutes (median 2.5), others ring out or are busy."""
    if rng.random() < answer_rate:
        talk = min(1800.0, max(10.0, rng.lognormvariate(math.log(150), 0.7)))
        return Outcome(True, rng.uniform(4, 20), talk, 200)
    code = rng.choices((480, 486, 487, 603), weights=(60, 20, 15, 5))[0]
    return Outcome(False, rng.uniform(15, 45) if code in (480, 487) else rng.uniform(1, 5), 0.0, code)


def robocall_outcome(rng: random.Random) -> Outcome:
    """A robocall: mostly rejected by carrier analytics (608) or unanswered; a few seconds when answered."""
    if rng.random() < 0.08:
        return Outcome(True, rng.uniform(2, 8), rng.uniform(1, 6), 200)
    code = rng.choices((608, 480, 486), weights=(50, 35, 15))[0]
    return Outcome(False, rng.uniform(0.5, 3) if code == 608 else rng.uniform(10, 30), 0.0, code)


def dialer_outcome(rng: random.Random, answer_rate: float) -> Outcome:
    """A predictive dialer's call: short talks, quick give-ups."""
    if rng.random() < answer_rate:
        return Outcome(True, rng.uniform(3, 10), rng.uniform(10, 90), 200)
    return Outcome(False, rng.uniform(15, 30), 0.0, 480)


def destination(rng: random.Random, country: str) -> str:
    """A random called number of `country` (mobiles mostly), unchecked: destinations are mostly unique."""
    if country == "FR":
        return f"+336{_digits(rng, 8)}" if rng.random() < 0.7 else f"+337{rng.randint(3, 9)}{_digits(rng, 7)}"
    if country == "US":
        return _us_number(rng)
    if country == "GB":
        return f"+447{rng.choice('45789')}{_digits(rng, 8)}"
    if country == "AU":
        return f"+614{_digits(rng, 8)}"
    return f"+49151{_digits(rng, 8)}"  # DE


@dataclass
class Clock:
    """The run's simulated clock: start time and how far it runs (None: forever)."""

    start: datetime
    limit_s: float | None

    def at(self, offset_s: float) -> str:
        """ISO 8601 UTC to the second, as switches write it."""
        moment = self.start + timedelta(seconds=math.floor(offset_s))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(order=True)
class Call:
    """A call placed at `start_s` (simulated seconds after the start) and the records it leaves."""

    start_s: float
    records: list[Emission] = field(compare=False)


def cdr_record(rng: random.Random, clock: Clock, start_s: float, line: Line, outcome: Outcome, dest: str,
               direction: str = "outbound", caller: str | None = None, attestation: str | None = None,
               extra: dict | None = None) -> dict:
    """One canonical CDR (outbound by default) for a call of `line`."""
    record = {
        "call_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "started_at": clock.at(start_s),
        "direction": direction,
        "caller_id": line.number if caller is None else caller,
        "destination": dest,
        "answered": outcome.answered,
        "duration_s": round(outcome.talk_s),
        "sip_code": outcome.sip_code,
        "attestation": attestation or ("A" if rng.random() < 0.92 else "B"),
        "tenant": line.tenant,
        "campaign": line.campaign,
        "carrier": rng.choice(CARRIERS),
    }
    if direction == "inbound":
        record.pop("attestation")
        record.pop("campaign")
    record.update(extra or {})
    return record


def _encode(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def emission(start_s: float, outcome: Outcome, record: dict) -> Emission:
    """The record, keyed by its raw caller ID, emitted when the call ends."""
    return (start_s + outcome.ring_s + outcome.talk_s, record_key(record), _encode(record))


# --- sources: each yields its calls in start order, with its own random stream ----------------


def _every(rng: random.Random, first_s: float, mean_gap_s: float, clock: Clock) -> Iterator[float]:
    """Start times from `first_s`, gaps of `mean_gap_s` +-25 %, until the clock's limit."""
    t = first_s
    while clock.limit_s is None or t <= clock.limit_s:
        yield t
        t += mean_gap_s * rng.uniform(0.75, 1.25)


def fleet_source(plan: Plan, rng: random.Random, clock: Clock, per_second: float) -> Iterator[Call]:
    """Ordinary agents: a Poisson stream of `per_second` calls (simulated), shared out over the fleet.

    Non-NPV French CLIs get at most FR_NORMAL_MAX_PER_DAY calls a day on average, so only the rogue
    CLI nears the operators' cap; a small share of records are malformed or delivered twice.
    """
    lines = plan.fleet
    capped = [not classify(line.number).fr_npv and line.country == "FR" for line in lines]
    fair = per_second / len(lines)
    cap = FR_NORMAL_MAX_PER_DAY / DAY_S
    n_capped = sum(capped)
    rest = max(per_second - n_capped * min(fair, cap), per_second * 0.5) / max(1, len(lines) - n_capped)
    weights = [min(fair, cap) if is_capped else rest for is_capped in capped]
    fr_lines = [line for line in lines if line.country == "FR"]
    t = 0.0
    for n in count():
        t += rng.expovariate(sum(weights)) if n else rng.uniform(0, 2)
        if clock.limit_s is not None and t > clock.limit_s:
            return
        if rng.random() < CALLBACK_SHARE:
            yield _callback(rng, clock, t, rng.choice(fr_lines), answered=True)
            continue
        line = rng.choices(lines, weights=weights)[0]
        outcome = agent_outcome(rng, line.answer_rate)
        country = line.country if rng.random() < 0.9 else rng.choice(("FR", "US", "GB", "AU", "DE"))
        record = cdr_record(rng, clock, t, line, outcome, destination(rng, country))
        yield Call(t, _spoil(rng, n, t, outcome, record))


def _spoil(rng: random.Random, n: int, t: float, outcome: Outcome, record: dict) -> list[Emission]:
    """The call's records: usually one; sometimes malformed (the DLQ's business), sometimes twice."""
    first = emission(t, outcome, record)
    kind = FORCED_MALFORMED.get(n) or (rng.choice(MALFORMATIONS) if rng.random() < MALFORMED_SHARE else None)
    if kind is not None:
        return [(first[0], first[1], malform(kind, record))]
    if rng.random() < DUPLICATE_SHARE:
        return [first, (first[0] + rng.uniform(1, 30), first[1], first[2])]
    return [first]


MALFORMATIONS = ("not_json", "missing_call_id", "bad_type", "bad_time")


def malform(kind: str, record: dict) -> bytes:
    """A record as a faulty switch or exporter writes it."""
    if kind == "not_json":
        text = _encode(record)
        return text[: len(text) // 2]  # a line cut off mid-write
    broken = dict(record)
    if kind == "missing_call_id":
        broken.pop("call_id")
    elif kind == "bad_type":
        broken["answered"] = "maybe"
    else:
        broken["started_at"] = broken["started_at"].replace("T", " ").removesuffix("Z")  # no offset
    return _encode(broken)


def _callback(rng: random.Random, clock: Clock, t: float, line: Line, answered: bool) -> Call:
    """Someone calls one of our French numbers back."""
    outcome = (Outcome(True, rng.uniform(3, 10), rng.uniform(30, 300), 200) if answered
               else Outcome(False, rng.uniform(20, 40), 0.0, 480))
    caller = _number(rng, set(), "fr_mobile")
    record = cdr_record(rng, clock, t, line, outcome, line.number, direction="inbound", caller=caller)
    return Call(t, [emission(t, outcome, record)])


def rogue_fr_source(plan: Plan, rng: random.Random, clock: Clock) -> Iterator[Call]:
    """The French CLI past the cap: FR_CALLS_BEFORE calls up to the first Paris midnight after the
    start (its 250th about a minute before), then calls for FR_AFTER_S into the new Paris day."""
    midnight_s = (next_paris_midnight(clock.start) - clock.start).total_seconds()
    first_s = midnight_s - FR_CALLS_BEFORE * FR_INTERVAL_S + FR_INTERVAL_S / 2
    for k in count():
        t = first_s + k * FR_INTERVAL_S + rng.uniform(-FR_INTERVAL_S / 4, FR_INTERVAL_S / 4)
        if t > midnight_s + FR_AFTER_S or (clock.limit_s is not None and t > clock.limit_s):
            return
        outcome = dialer_outcome(rng, plan.rogue_fr.answer_rate)
        record = cdr_record(rng, clock, t, plan.rogue_fr, outcome, destination(rng, "FR"))
        if t >= 0:
            yield Call(t, [emission(t, outcome, record)])


def robocall_source(plan: Plan, rng: random.Random, clock: Clock) -> Iterator[Call]:
    """A robocaller: a call every ~12 s, hundreds a run, mostly 608 or unanswered, attestation C."""
    for t in _every(rng, 20.0, 12.0, clock):
        outcome = robocall_outcome(rng)
        record = cdr_record(rng, clock, t, plan.robocaller, outcome, destination(rng, "US"), attestation="C")
        yield Call(t, [emission(t, outcome, record)])


def pattern_source(rng: random.Random, clock: Clock, line: Line, first_s: float, gap_s: float,
                   dest: Callable[[], str], caller: Callable[[], str] | None = None,
                   extra: dict | None = None) -> Iterator[Call]:
    """Ordinary-looking calls of one rule-breaking CLI: the first early in the run, then every `gap_s`
    (`extra`: fields such as `purpose` or `ingress_country` its records carry)."""
    for t in _every(rng, first_s, gap_s, clock):
        outcome = agent_outcome(rng, line.answer_rate)
        record = cdr_record(rng, clock, t, line, outcome, dest(), caller=caller() if caller else None, extra=extra)
        yield Call(t, [emission(t, outcome, record)])


def callback_source(plan: Plan, rng: random.Random, clock: Clock) -> Iterator[Call]:
    """Unanswered callbacks to a French number the tenant presents."""
    for t in _every(rng, 190.0, 1200.0, clock):
        yield _callback(rng, clock, t, plan.callback_fr, answered=False)


def sources(plan: Plan, rng_for: Callable[[str], random.Random], clock: Clock,
            per_second: float) -> list[Iterator[Call]]:
    """Every stream of calls of a run; each has its own random stream, so none disturbs another."""
    invalid = rng_for("invalid-cli")
    tf_rng, abroad_rng = rng_for("tollfree-dest"), rng_for("tollfree-abroad-dest")

    def valid(rng: random.Random, kind: str) -> Callable[[], str]:
        return lambda: _number(rng, set(), kind)

    robo, redial = rng_for("robo-fr-dest"), rng_for("redial-cli")
    consumer = destination(rng_for("redial-consumer"), "FR")  # one consumer, called again and again

    return [
        fleet_source(plan, rng_for("fleet"), clock, per_second),
        rogue_fr_source(plan, rng_for("rogue-fr"), clock),
        robocall_source(plan, rng_for("robocall"), clock),
        callback_source(plan, rng_for("callbacks"), clock),
        pattern_source(rng_for("invalid"), clock, plan.fleet[0], 10.0, 90.0, lambda: destination(invalid, "FR"),
                       caller=lambda: invalid.choice(plan.invalid)),
        pattern_source(rng_for("no-cnam"), clock, plan.no_cnam, 30.0, 300.0, valid(rng_for("no-cnam-dest"), "us")),
        pattern_source(rng_for("tollfree"), clock, plan.tollfree_domestic, 40.0, 1200.0,
                       valid(tf_rng, "us_tollfree")),
        pattern_source(rng_for("tollfree-abroad"), clock, plan.tollfree_abroad, 70.0, 1500.0,
                       valid(abroad_rng, "au")),
        pattern_source(rng_for("au-1300"), clock, plan.au_1300, 100.0, 900.0, valid(rng_for("au-dest"), "au")),
        pattern_source(rng_for("uk-0870"), clock, plan.uk_0870, 130.0, 900.0, valid(rng_for("gb-dest"), "gb")),
        pattern_source(rng_for("unauthorised"), clock, plan.unauthorised, 160.0, 360.0,
                       valid(rng_for("unauth-dest"), "us")),
        pattern_source(rng_for("self-call"), clock, plan.self_caller, 220.0, 1800.0, lambda: plan.self_caller.number),
        # The jurisdiction rules. The default start is late evening in Paris: telemarketing to France
        # is then outside the permitted hours too.
        pattern_source(rng_for("robo-fr"), clock, plan.robo_fr, 45.0, 600.0, lambda: destination(robo, "FR"),
                       extra={"purpose": "automated"}),
        pattern_source(rng_for("es-mobile"), clock, plan.es_mobile, 55.0, 600.0, valid(rng_for("es-dest"), "es_mobile"),
                       extra={"purpose": "telemarketing"}),
        pattern_source(rng_for("spoof-gb"), clock, plan.spoof_gb, 65.0, 600.0, valid(rng_for("gb-dest2"), "gb"),
                       extra={"ingress_country": "NL"}),
        pattern_source(rng_for("redial"), clock, plan.redialer[0], 75.0, 60.0, lambda: consumer,
                       caller=lambda: redial.choice(plan.redialer).number, extra={"purpose": "telemarketing"}),
        # US calling hours: the default start is afternoon in every US zone, so this dialer calls the East
        # Coast from the start and trips us.calling_hours once 21:00 comes there (2-3 simulated hours in).
        pattern_source(rng_for("us-evening"), clock, plan.us_dialer, 85.0, 300.0,
                       valid(rng_for("us-east-dest"), "us_east"), extra={"purpose": "telemarketing"}),
    ]


def generate(seed: int, rate: float, duration: float | None, speed: float = 1.0,
             start: datetime | None = None) -> Iterator[Emission]:
    """The run's records in call-end order: (emission time in simulated seconds after `start`, key, value).

    `rate` is the ordinary fleet's records per real second (at `speed` simulated seconds per real
    second, so `rate / speed` calls per simulated second; the rule-tripping CLIs come on top);
    `duration` real seconds (None or <= 0: forever); `start` defaults to `default_start(now)`. A call
    still in progress when the run ends leaves no record, as on a real switch.
    """
    if rate <= 0 or speed <= 0:
        raise ValueError("rate and speed must be positive")
    start = (start or default_start(datetime.now(UTC))).astimezone(UTC)
    limit = duration * speed if duration and duration > 0 else None
    clock = Clock(start, limit)
    plan = sim_plan(seed)
    run = f"cidwatch-sim:{seed}:{start.isoformat()}"

    def rng_for(name: str) -> random.Random:
        return random.Random(f"{run}:{name}")

    calls = heapq.merge(*sources(plan, rng_for, clock, rate / speed))
    yield from _in_end_order(calls, limit)


def _in_end_order(calls: Iterator[Call], limit: float | None) -> Iterator[Emission]:
    """Hold each record until the simulated clock (the latest call start) passes its end."""
    pending: list[tuple[float, int, bytes, bytes]] = []
    order = count()
    for call in calls:
        while pending and pending[0][0] <= call.start_s:
            emit_at, _, key, value = heapq.heappop(pending)
            yield emit_at, key, value
        for emit_at, key, value in call.records:
            heapq.heappush(pending, (emit_at, next(order), key, value))
    while pending and (limit is None or pending[0][0] <= limit):
        emit_at, _, key, value = heapq.heappop(pending)
        yield emit_at, key, value


# --- sending ----------------------------------------------------------------------------------


@dataclass
class SendStats:
    """What a run sent, for the closing line (malformed: records the worker must dead-letter)."""

    sent: int = 0
    malformed: int = 0
    failed: list[BaseException] = field(default_factory=list)
    sim_s: float = 0.0


def is_malformed(value: bytes) -> bool:
    """Whether the worker will dead-letter this value (the same validation it runs)."""
    from streams.dlq import Rejected, validate

    try:
        validate(value, max_bytes=1 << 30)
    except Rejected:
        return True
    return False


def paced(emissions: Iterator[Emission], speed: float, stop: threading.Event) -> Iterator[Emission]:
    """Release each record when the real clock reaches its simulated emission time."""
    began = time.monotonic()
    for item in emissions:
        delay = began + item[0] / speed - time.monotonic()
        if (delay > 0 and stop.wait(delay)) or stop.is_set():
            return
        yield item


def send(settings: Settings, emissions: Iterator[Emission], speed: float, stop: threading.Event,
         stats: SendStats, on_sent: Callable[[SendStats], None] | None = None) -> SendStats:
    """Produce the records to the cdr topic in real time until they run out or `stop` is set."""
    from cidwatch.produce import make_producer

    topic = settings.topic("cdr")
    producer = make_producer(settings)
    try:
        for emit_at, key, value in paced(emissions, speed, stop):
            producer.send(topic, key=key, value=value).add_errback(stats.failed.append)
            stats.sent += 1
            stats.sim_s = emit_at
            stats.malformed += is_malformed(value)
            if on_sent is not None:
                on_sent(stats)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return stats


class Simulator:
    """`send` on a background thread, for commands that do something else meanwhile (the demo)."""

    def __init__(self, settings: Settings, emissions: Iterator[Emission], speed: float) -> None:
        self.stats = SendStats()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(settings, emissions, speed),
                                        name="cidwatch-simulator", daemon=True)

    def _run(self, settings: Settings, emissions: Iterator[Emission], speed: float) -> None:
        try:
            send(settings, emissions, speed, self.stop_event, self.stats)
        except BaseException as exc:  # reported by the owner of the thread
            self.error = exc

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 40.0) -> None:
        """Stop sending, flush what was sent, close the producer."""
        self.stop_event.set()
        self._thread.join(timeout)


# --- command line -----------------------------------------------------------------------------


def parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliError(f"--start {text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise CliError(f"--start {text!r} has no UTC offset; add Z or +02:00")
    return moment.astimezone(UTC)


def new_seed() -> int:
    """A fresh seed, so a run against a worker that remembers earlier runs still trips every rule."""
    return random.SystemRandom().randrange(1, 1_000_000)


def describe_run(seed: int, start: datetime, speed: float) -> str:
    """What the run will show, and when (real seconds after it starts)."""
    plan = sim_plan(seed)
    midnight = next_paris_midnight(start)
    block_s = (midnight - start).total_seconds() - (FR_CALLS_BEFORE - 250) * FR_INTERVAL_S
    local = start.astimezone(PARIS)
    evening_s = (us_evening_cutoff(start) - start).total_seconds()
    return (f"seed {seed}; simulated clock from {start:%Y-%m-%d %H:%M:%S}Z ({local:%H:%M} Paris), {speed:g}x; "
            f"French CLI {plan.rogue_fr.number} should be blocked at about +{block_s / speed:.0f} s "
            f"and unblocked at Paris midnight, about +{(midnight - start).total_seconds() / speed:.0f} s; "
            f"US CLI {plan.us_dialer.number} calls the East Coast past 21:00 there (us.calling_hours) "
            f"from about +{evening_s / speed:.0f} s")


def us_evening_cutoff(after: datetime) -> datetime:
    """The first 21:00 America/New_York at or after `after`, in UTC: when the US dialer's calls start
    to break the calling hours."""
    local = after.astimezone(EASTERN)
    cutoff = datetime.combine(local.date(), US_EVENING_CUTOFF, tzinfo=EASTERN)
    if cutoff < local:
        cutoff = datetime.combine(local.date() + timedelta(days=1), US_EVENING_CUTOFF, tzinfo=EASTERN)
    return cutoff.astimezone(UTC)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cidwatch simulate`."""
    parser = subparsers.add_parser(
        "simulate", help="send realistic simulated CDR traffic that trips every rule to the cdr topic",
        description="Generate canonical CDRs for three tenants (acme, globex, initech) and a few hundred "
        "caller IDs with ordinary agent traffic, plus caller IDs that trip every rule: a French non-NPV CLI "
        "past 250 calls in a Paris day and on past Paris midnight (alert, block, then unblock), toll-free "
        "to toll-free, toll-free to Australia, an AU 1300 and a UK 0870 CLI, invalid CLIs, an "
        "unauthorised CLI, unanswered callbacks, a US number without CNAM, a robocaller, test calls "
        "presenting the called number itself, and a few "
        "malformed records for the DLQ. Records are sent in call-end order, in real time at --speed, "
        "keyed by subject, the normalised caller ID (broker: env CIDWATCH_BROKER, prefix: env CIDWATCH_TOPIC_PREFIX). "
        "The default clock starts about 35 simulated minutes before a Paris midnight, so the French "
        "CLI's block and unblock come within the first 45 simulated minutes (45 s at --speed 60).")
    parser.add_argument("--rate", type=float, default=20.0, metavar="N",
                        help="records per real second of ordinary traffic (default 20; the rule-tripping "
                        "CLIs add about 0.25 per simulated second)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S",
                        help="real seconds to run (default 0: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="random seed: the same seed and --start give the same records (default: a new "
                        "one, printed)")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="simulated seconds per real second (default 1; the demo uses 60)")
    parser.add_argument("--start", default=None, metavar="ISO",
                        help="simulated start time, e.g. 2026-05-04T21:25:00Z (default: about 35 minutes "
                        "before the next Paris midnight); the French CLI's calls always lead up to the first "
                        "Paris midnight after it")
    parser.add_argument("--write-inventory", type=Path, default=None, metavar="FILE",
                        help="write the simulated tenants' number inventory (YAML) to FILE")
    parser.add_argument("--push-inventory", action="store_true",
                        help="publish that inventory to the inventory topic before sending")
    add_kafka_arguments(parser)
    parser.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.rate <= 0 or args.speed <= 0 or args.duration < 0:
        raise CliError("--rate and --speed must be positive, --duration 0 or more")
    seed = args.seed if args.seed is not None else new_seed()
    start = parse_start(args.start) or default_start(datetime.now(UTC))
    settings = kafka_settings(args)
    inventory = sim_inventory(seed)
    if args.write_inventory:
        args.write_inventory.write_text(inventory_yaml(inventory), encoding="utf-8")
        print(f"wrote {len(inventory)} numbers to {args.write_inventory}", file=sys.stderr)
    if args.push_inventory:
        from streams.inventory_topic import push

        push(settings, inventory)
        print(f"pushed {len(inventory)} numbers to {settings.topic('inventory')}", file=sys.stderr)
    print(f"simulating: {describe_run(seed, start, args.speed)}; Ctrl-C to stop", file=sys.stderr)
    stats = SendStats()
    stop = threading.Event()
    began = time.monotonic()
    try:
        send(settings, generate(seed, args.rate, args.duration, args.speed, start), args.speed, stop, stats,
             _progress_printer(settings.topic("cdr")))
    except KeyboardInterrupt:
        stop.set()
    print(f"\nsent {stats.sent} records ({stats.malformed} malformed) to {settings.topic('cdr')} in "
          f"{time.monotonic() - began:.0f} s, {stats.sim_s / 60:.0f} simulated minutes", file=sys.stderr)
    if stats.failed:
        raise CliError(f"{len(stats.failed)} records were not delivered: {stats.failed[0]!r}")
    return 0


def _progress_printer(topic: str) -> Callable[[SendStats], None]:
    """A one-line counter on stderr, refreshed at most twice a second."""
    last = [0.0]

    def show(stats: SendStats) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            print(f"\r{topic}: {stats.sent} records, {stats.malformed} malformed, "
                  f"simulated +{stats.sim_s / 60:.1f} min", end="", file=sys.stderr, flush=True)

    return show
