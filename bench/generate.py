"""Generated CDRs for the benchmarks: valid numbers, realistic cardinality, and traffic that makes rules fire.

Every number is drawn from a national block (a prefix and a count of free digits) that phonenumbers
accepts as valid; the blocks are checked once per process (`_blocks`, well under a second of phonenumbers
calls), never per record, so generating runs at well over 100,000 records/s. Each caller ID (CLI) of
the pool is also checked on its own when the pool is built.

The CLI pool (3,000 by default, a few busy ones and a long tail) holds, on purpose:

- geographic and mobile numbers of the US, Canada, the UK, France, Germany and Australia;
- about 6% toll-free CLIs (US 800/833/.../888, FR 080x, UK 0800/0808, AU 1800), which also call
  toll-free destinations (4% of destinations) and other countries (15% of calls are international);
- about 2% invalid CLIs (one digit short or long, letters, no leading "+", unassigned calling code
  +999, "anonymous");
- a few UK 0870/0871/09 and Australian 13/1300 CLIs, which may not be presented;
- two US dialer CLIs that look like spam (1% and 0.5% of the traffic, 8% answered, short calls,
  attested B or C), for the spam-label risk rule;
- French NPV CLIs, and five busy French non-NPV CLIs that carry a fixed share of the traffic (3%, 2%,
  1.5%, 1% and 0.5%), so the busiest passes 250 calls in one Europe/Paris day from about 25,000 records
  (n records are spread over 3 days); one busy French NPV CLI (1%) shows the exemption;
- four episodic CLIs, one per example threshold pack (rules/packs/{runaway,asr,shortcalls,sequential}.yaml,
  enabled by `load_packs(examples=True)`), which call only in episodes (`EPISODES`): a German dialer that
  makes 70 calls in 56 s (the runaway alert at 30, its block at 60), a British CLI with 250 calls in 50
  minutes 8% answered (the low-answer-rate alert at its 200th call), an Australian CLI with 90 calls in 45
  minutes, 85% answered and 70% of those under 6 s (the short-call alert past 50 answered calls), and a
  British CLI that redials one number 35 times in 6 minutes (the sequential alert at 30). Each episode
  then calms down to a call every minute or five, so the rule clears (resolve, and unblock of the block)
  by its hysteresis, as the packs' own fixtures do (tests/threshold_fixtures.py).

Evenly spaced records (3 days / n apart: 1.3 s at 200,000) cannot make a burst, so episodes carry their
own times and are merged into the stream in time order; the other records fill the rest of n. One round
of the four episodes per 50,000 records (none below), rounds at least 3 hours apart (at most 24 in 3
days): about 1% of the records, whatever n.

1.5% of records are inbound calls to the French CLIs (45% unanswered), for the unanswered-callback rule.
Every CLI belongs to one tenant and its records carry that tenant; `inventory_rows` lists the valid
CLIs with their tenant except about 3% of them, which the not-authorised-CLI rule blocks.

The pool depends on (seed, clis) only, so `inventory_rows(seed, clis)` matches `cdrs(n, clis, seed)`
whatever n. Output is deterministic per seed (for one phonenumbers version).
"""

from __future__ import annotations

import json
import random
from bisect import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import phonenumbers

TENANTS = ("acme", "globex", "initech")

# Mirrors rules/numbers.py FR_NPV_PREFIXES (ARCEP decision 2022-1583), kept here so the generator does
# not depend on the engine's modules.
FR_NPV_PREFIXES = (
    "162", "163", "270", "271", "377", "378", "424", "425", "568", "569", "948", "949",
    "9475", "9476", "9477", "9478", "9479",
)

# Candidate national blocks: (national prefix, allowed next digits, free digits after them), e.g. New
# York 212 with an exchange starting 2-9. They skip what phonenumbers rejects (Réunion's +33 262, the
# UK's fictional 7700 900, Australian 08 ranges that are unallocated...); a block that still fails is split
# by its next digit and the invalid parts dropped (see `_valid_blocks`), so the data stay valid when the
# phonenumbers metadata change.
D = "0123456789"
NANP_EXCHANGE = "23456789"
REGULAR = {  # geographic and mobile
    "US": ("1", [(npa, NANP_EXCHANGE, 6) for npa in (
        "202", "206", "212", "214", "303", "305", "312", "404", "415", "512", "602", "617", "646", "702", "713",
        "718", "773", "919")]),
    "CA": ("1", [(npa, NANP_EXCHANGE, 6) for npa in ("403", "416", "514", "604", "613", "780")]),
    "GB": ("44", [("207946", D, 3), ("203", D, 6), ("208", D, 6), ("113", "012345", 6), ("117", "01234", 6),
                  ("121", "01234567", 6), ("131", "012345678", 6), ("141", D, 6), ("161", D, 6),
                  ("74", D, 7), ("75", D, 7), ("77", "123456789", 7), ("78", D, 7), ("79", "023456789", 7),
                  ("791", "23456789", 6)]),
    "FR": ("33", [("1", D, 7), ("2", "012345789", 7), ("3", D, 7), ("4", "123456789", 7),
                  ("5", "012345678", 7), ("6", "01245678", 7), ("7", "3456789", 7), ("9", D, 7)]),
    "DE": ("49", [("30", D, 7), ("40", D, 7), ("69", D, 7), ("89", D, 7), ("151", D, 7), ("160", D, 6),
                  ("170", D, 7), ("176", D, 7)]),
    "AU": ("61", [("2", "0126789", 7), ("3", "0123589", 7), ("7", "0134579", 7), ("8", "789", 7),
                  ("4", "01236", 7)]),
}
TOLL_FREE = {
    "US": [(npa, NANP_EXCHANGE, 6) for npa in ("800", "833", "844", "855", "866", "877", "888")],
    "CA": [(npa, NANP_EXCHANGE, 6) for npa in ("800", "888")],
    "GB": [("800", D, 6), ("808", D, 6)],
    "FR": [(f"80{d}", D, 5) for d in range(6)],
    "DE": [("800", D, 6)],
    "AU": [("1800", D, 5)],
}
FR_NPV = [(prefix, D, 8 - len(prefix)) for prefix in FR_NPV_PREFIXES]
UK_NOT_PERMITTED = [("870", D, 6), ("871", D, 6), ("909", D, 6)]
AU_RECEIVE_ONLY = [("13", D, 3), ("1300", D, 5)]

COUNTRY_WEIGHTS = {"US": 35, "CA": 5, "FR": 25, "GB": 15, "DE": 10, "AU": 10}  # regular CLIs and foreign calls
TOLL_FREE_CLI_WEIGHTS = {"US": 60, "FR": 15, "GB": 15, "AU": 10}

INVALID_SHARE = 0.02
TOLL_FREE_SHARE = 0.06
FR_NPV_SHARE = 0.03
UNLISTED_SHARE = 0.03  # valid CLIs missing from the inventory
BUSY_FR = (0.03, 0.02, 0.015, 0.01, 0.005)  # traffic shares of the busy French non-NPV CLIs
BUSY_FR_NPV = 0.01
ROBOCALLS = (0.01, 0.005)  # traffic shares of two US dialer CLIs that look like spam (spam-label risk)
EPISODE_EVERY = 50_000  # records per round of episodes (one episode of each episodic CLI)
EPISODE_SPACING = timedelta(hours=3)  # the least time between two rounds: each episode has cleared by then
SHORT_CALL_S = (1.0, 5.9)  # how long a short answered call lasts (the short-call pack counts under 6 s)
DOMESTIC_SHARE = 0.85
TOLL_FREE_DESTINATION_SHARE = 0.04
INBOUND_SHARE = 0.015
INBOUND_ANSWERED = 0.55
OUTBOUND_ANSWERED = 0.4
START = datetime(2026, 6, 1, 6, tzinfo=UTC)
SPAN = timedelta(days=3)
CHUNK = 65_536


@dataclass(frozen=True)
class Phase:
    """A stretch of an episode: `calls` calls `every` seconds apart from `at` seconds after its start."""

    at: float
    calls: int
    every: float
    answered: float  # share of its calls answered
    short: float = 0.0  # share of its answered calls under 6 s (SHORT_CALL_S); the others last as usual
    same_destination: bool = False  # every call of the phase to one number (a redial loop)


# Episodic CLIs: kind -> (their country, the phases of one episode). Each makes one example threshold rule
# fire, then calms down until the rule's hysteresis clears it (levels and clearing of rules/packs/*.yaml).
EPISODES: dict[str, tuple[str, tuple[Phase, ...]]] = {
    # shortcalls.share: 50 answered calls in 1 h, over 40 % under 6 s; then fewer than 50 answered in the
    # hour from about 80 min, cleared 15 min later.
    "short_calls": ("AU", (Phase(0, 90, 30, 0.85, short=0.7), Phase(2700, 14, 300, OUTBOUND_ANSWERED))),
    # asr.low_answer_rate: 200 calls in 1 h under 15 % answered; then under 200 calls in the hour from
    # 75 min, cleared 15 min later.
    "low_asr": ("GB", (Phase(0, 250, 12, 0.08), Phase(3000, 12, 300, OUTBOUND_ANSWERED))),
    # runaway.calls_per_minute: 30 calls in 60 s (alert), 60 (block); then one a minute from 2 min, under
    # 10 a minute at once, cleared 5 min later.
    "runaway": ("DE", (Phase(0, 70, 0.8, 0.3), Phase(120, 12, 60, OUTBOUND_ANSWERED))),
    # sequential.same_destination: 30 calls in a row to one number within 10 min; then other numbers, once
    # a minute: the run is broken, cleared 10 min later.
    "redialer": ("GB", (Phase(0, 35, 10, 0.1, same_destination=True), Phase(400, 12, 60, OUTBOUND_ANSWERED))),
}


def is_valid(number: str) -> bool:
    """phonenumbers' verdict on an E.164 string (the reference the rules use)."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def _valid_blocks(code: str, prefix: str, leads: str, digits: int, depth: int = 0) -> list[tuple[str, int]]:
    """The parts of a candidate block phonenumbers accepts, as (prefix, free digits) blocks.

    Each allowed next digit is tried with every digit after it and a mixed tail, and with all zeros and
    all nines; a block failing anywhere is split by its next digit (up to 3 levels), failures dropped.
    """
    mixed = "58304617295830461729"
    numbers = []
    for lead in leads:
        if digits == 0:
            numbers.append(f"+{code}{prefix}{lead}")
            continue
        numbers += [f"+{code}{prefix}{lead}{d}{mixed[int(d):int(d) + digits - 1]}" for d in D]
        numbers += [f"+{code}{prefix}{lead}{'0' * digits}", f"+{code}{prefix}{lead}{'9' * digits}"]
    if all(map(is_valid, numbers)):
        return [(prefix + lead, digits) for lead in leads]
    if digits == 0:
        return [(prefix + lead, 0) for lead in leads if is_valid(f"+{code}{prefix}{lead}")]
    if depth >= 3:
        return []
    return [block for lead in leads for block in _valid_blocks(code, prefix + lead, D, digits - 1, depth + 1)]


class Plan:
    """Valid blocks of one kind of number, drawn in proportion to their size."""

    def __init__(self, code: str, candidates: list[tuple[str, str, int]]) -> None:
        self.code = code
        blocks = [block for candidate in candidates for block in _valid_blocks(code, *candidate)]
        if not blocks:
            raise ValueError(f"no valid block for +{code} among {candidates}")
        self.formats = [f"+{code}{prefix}%0{digits}d" for prefix, digits in blocks]
        self.sizes = [10**digits for _prefix, digits in blocks]
        self.cum = []
        total = 0
        for size in self.sizes:
            total += size
            self.cum.append(total)
        self.total = total

    def draw(self, rand: Callable[[], float]) -> str:
        index = bisect(self.cum, rand() * self.total)
        return self.formats[index] % int(rand() * self.sizes[index])


@dataclass(frozen=True)
class Plans:
    regular: dict[str, Plan]
    toll_free: dict[str, Plan]
    fr_npv: Plan
    uk_not_permitted: Plan
    au_receive_only: Plan
    foreign: tuple[str, ...]  # country keys repeated by weight, for international calls


@lru_cache(maxsize=1)
def _blocks() -> Plans:
    foreign = tuple(country for country, weight in COUNTRY_WEIGHTS.items() for _ in range(weight))
    return Plans(
        regular={country: Plan(code, blocks) for country, (code, blocks) in REGULAR.items()},
        toll_free={country: Plan(REGULAR[country][0], blocks) for country, blocks in TOLL_FREE.items()},
        fr_npv=Plan("33", FR_NPV),
        uk_not_permitted=Plan("44", UK_NOT_PERMITTED),
        au_receive_only=Plan("61", AU_RECEIVE_ONLY),
        foreign=foreign,
    )


@dataclass(frozen=True)
class Cli:
    number: str
    tenant: str
    country: str  # where its calls mostly go (its own country; for invalid CLIs the country it was made from)
    kind: str  # regular | toll_free | fr_npv | fr_busy | fr_busy_npv | robocall | uk_not_permitted
    #            | au_receive_only | invalid, or a kind of EPISODES
    answered: float = OUTBOUND_ANSWERED  # share of its calls answered
    duration_rate: float = 1 / 90  # answered calls last exponentially, mean 1 / rate seconds
    attested_c: float = 0.0  # share attested C
    attested_b_or_c: float = 0.25  # share attested B or C (the rest A)


@dataclass(frozen=True)
class Pool:
    clis: tuple[Cli, ...]
    cum_weights: tuple[float, ...]
    inbound_targets: tuple[Cli, ...]  # French CLIs that receive callbacks
    unlisted: frozenset[str]  # valid CLIs left out of the inventory
    episodic: tuple[Cli, ...]  # one per kind of EPISODES, in its order; never drawn for ordinary calls


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _invalid(rng: random.Random, plans: Plans, index: int) -> tuple[str, str]:
    """An invalid caller ID as seen in real CDRs, and the country it was made from."""
    country = _weighted(rng, {"US": 40, "FR": 30, "GB": 30})
    valid = plans.regular[country].draw(rng.random)
    form = index % 5
    if form == 0:
        return valid[:-1], country  # one digit short
    if form == 1:
        return valid + str(rng.randrange(10)), country  # one digit long
    if form == 2:
        return valid[1:], country  # no leading "+"
    if form == 3:
        # Two letters (three or more would read as a vanity number, which phonenumbers converts).
        return valid[:-2] + "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)), country
    if index == 4:
        return "anonymous", "US"
    return f"+999{rng.randrange(10**8):08d}", country  # no such calling code


@lru_cache(maxsize=8)
def _pool(seed: int, clis: int) -> Pool:
    if clis < 100:
        raise ValueError(f"clis must be at least 100, got {clis}")
    plans = _blocks()
    rng = random.Random(f"cidwatch-bench-pool-{seed}")
    seen: set[str] = set()
    made: list[Cli] = []

    def add(kind: str, country: str, draw: Callable[[], str], **profile: float) -> Cli:
        while True:
            number = draw()
            nsn = number[3:] if country == "FR" else ""
            if kind in ("regular", "fr_busy") and country == "FR" and nsn.startswith(FR_NPV_PREFIXES):
                continue
            if number not in seen and is_valid(number):
                seen.add(number)
                cli = Cli(number, rng.choice(TENANTS), country, kind, **profile)
                made.append(cli)
                return cli

    busy = [add("fr_busy", "FR", lambda: plans.regular["FR"].draw(rng.random)) for _ in BUSY_FR]
    busy.append(add("fr_busy_npv", "FR", lambda: plans.fr_npv.draw(rng.random)))
    busy += [add("robocall", "US", lambda: plans.regular["US"].draw(rng.random), answered=0.08,
                 duration_rate=1 / 8, attested_c=0.6, attested_b_or_c=1.0) for _ in ROBOCALLS]
    rest_start = len(made)
    for index in range(max(5, round(clis * INVALID_SHARE))):
        number, country = _invalid(rng, plans, index)
        while number in seen or is_valid(number):
            number, country = _invalid(rng, plans, index)
        seen.add(number)
        made.append(Cli(number, rng.choice(TENANTS), country, "invalid"))
    for _ in range(max(4, round(clis * TOLL_FREE_SHARE))):
        country = _weighted(rng, TOLL_FREE_CLI_WEIGHTS)
        add("toll_free", country, lambda country=country: plans.toll_free[country].draw(rng.random))
    for _ in range(max(3, round(clis * FR_NPV_SHARE))):
        add("fr_npv", "FR", lambda: plans.fr_npv.draw(rng.random))
    for _ in range(max(3, clis // 500)):
        add("uk_not_permitted", "GB", lambda: plans.uk_not_permitted.draw(rng.random))
    for _ in range(max(3, clis // 500)):
        add("au_receive_only", "AU", lambda: plans.au_receive_only.draw(rng.random))
    while len(made) < clis:
        country = _weighted(rng, COUNTRY_WEIGHTS)
        add("regular", country, lambda country=country: plans.regular[country].draw(rng.random))
    rest = made[rest_start:]
    rng.shuffle(rest)  # the categories spread over the popularity ranks
    zipf = [1 / (rank + 1) ** 0.8 for rank in range(len(rest))]  # a few busy CLIs, a long tail
    scale = (1 - sum(BUSY_FR) - BUSY_FR_NPV - sum(ROBOCALLS)) / sum(zipf)
    weights = [*BUSY_FR, BUSY_FR_NPV, *ROBOCALLS, *(w * scale for w in zipf)]
    ordered = busy + rest
    cum, total = [], 0.0
    for weight in weights:
        total += weight
        cum.append(total)
    regular = [cli for cli in rest if cli.kind == "regular"]
    unlisted = rng.sample(regular, round(len(ordered) * UNLISTED_SHARE))
    targets = tuple(cli for cli in ordered if cli.country == "FR" and cli.kind in ("regular", "fr_busy", "fr_npv"))
    # Drawn last, so the pool above is the same as without them (and so are the records of small runs).
    episodic = tuple(add(kind, country, lambda country=country: plans.regular[country].draw(rng.random))
                     for kind, (country, _phases) in EPISODES.items())
    return Pool(tuple(ordered), tuple(cum), targets, frozenset(cli.number for cli in unlisted), episodic)


def _episodes(pool: Pool, n: int, seed: int, span: timedelta) -> list[tuple[datetime, dict]]:
    """The episodic CLIs' calls for n records over `span`, in time order: (naive UTC start, record without
    its call_id). A round of episodes per EPISODE_EVERY records, spread evenly over the span with a little
    jitter (no more rounds than fit EPISODE_SPACING apart); within a round the four kinds start a quarter
    of it apart, so no two episodes of one CLI overlap."""
    rounds = min(n // EPISODE_EVERY, int(span / EPISODE_SPACING))
    if rounds == 0:
        return []
    plans = _blocks()
    regular, foreign = plans.regular, plans.foreign
    rng = random.Random(f"cidwatch-bench-episodes-{seed}")
    rand = rng.random
    length = span / rounds
    start = START.replace(tzinfo=None)
    failures = (480, 486, 487, 603, 608)
    calls = []
    for index in range(rounds):
        for slot, (cli, (_country, phases)) in enumerate(zip(pool.episodic, EPISODES.values(), strict=True)):
            begin = start + length * index + length * slot / 4 + length * rand() / 8
            for phase in phases:
                fixed = regular[cli.country].draw(rand) if phase.same_destination else None
                for call in range(phase.calls):
                    country = cli.country if rand() < DOMESTIC_SHARE else foreign[int(rand() * len(foreign))]
                    answered = rand() < phase.answered
                    duration: float = 0  # an unanswered call's, written 0 as the other records' are
                    if answered and rand() < phase.short:
                        duration = round(SHORT_CALL_S[0] + rand() * (SHORT_CALL_S[1] - SHORT_CALL_S[0]), 1)
                    elif answered:
                        duration = round(rng.expovariate(cli.duration_rate), 1)
                    moment = begin + timedelta(seconds=phase.at + phase.every * call)
                    calls.append((moment, {
                        "started_at": moment.isoformat() + "Z", "direction": "outbound", "caller_id": cli.number,
                        "destination": fixed or regular[country].draw(rand), "answered": answered,
                        "duration_s": duration, "sip_code": 200 if answered else failures[int(rand() * 5)],
                        "attestation": "B" if rand() < cli.attested_b_or_c else "A", "tenant": cli.tenant,
                    }))
    calls.sort(key=lambda call: call[0])
    return calls


def cdrs(n: int, clis: int = 3000, seed: int = 1, days: float = 3) -> Iterator[dict]:
    """n canonical CDR dicts over `days` days (3 unless told) from 2026-06-01 06:00 UTC, in started_at order."""
    pool = _pool(seed, clis)
    plans = _blocks()
    regular, toll_free, foreign = plans.regular, plans.toll_free, plans.foreign
    targets = pool.inbound_targets
    rng = random.Random(seed)
    rand, expovariate = rng.random, rng.expovariate
    span = SPAN if days == 3 else timedelta(days=days)
    episodes = _episodes(pool, n, seed, span)
    ordinary = n - len(episodes)  # the records drawn from the pool's weights, evenly spaced
    step = span / max(ordinary, 1)
    start = START.replace(tzinfo=None)  # formatted with a "Z" below
    failures = (480, 486, 487, 603, 608)
    inbound = Cli("", "", "FR", "inbound")  # the call profile of inbound calls
    pending = iter(episodes)
    upcoming = next(pending, None)
    i = 0  # the record's place in the output (its call_id)
    for base in range(0, ordinary, CHUNK):
        chosen = rng.choices(pool.clis, cum_weights=pool.cum_weights, k=min(CHUNK, ordinary - base))
        for offset, cli in enumerate(chosen):
            moment = start + step * (base + offset)
            while upcoming is not None and upcoming[0] <= moment:
                yield {"call_id": f"b{i}", **upcoming[1]}
                i += 1
                upcoming = next(pending, None)
            started_at = moment.isoformat() + "Z"
            if rand() < INBOUND_SHARE:
                target = targets[int(rand() * len(targets))]
                country = "FR" if rand() < DOMESTIC_SHARE else foreign[int(rand() * len(foreign))]
                caller, destination, tenant = regular[country].draw(rand), target.number, target.tenant
                direction, answered, profile = "inbound", rand() < INBOUND_ANSWERED, inbound
            else:
                country = cli.country if rand() < DOMESTIC_SHARE else foreign[int(rand() * len(foreign))]
                plan = toll_free.get(country) if rand() < TOLL_FREE_DESTINATION_SHARE else None
                caller, destination, tenant = cli.number, (plan or regular[country]).draw(rand), cli.tenant
                direction, answered, profile = "outbound", rand() < cli.answered, cli
            attestation = rand()
            yield {
                "call_id": f"b{i}", "started_at": started_at, "direction": direction, "caller_id": caller,
                "destination": destination, "answered": answered,
                "duration_s": round(expovariate(profile.duration_rate), 1) if answered else 0,
                "sip_code": 200 if answered else failures[int(rand() * 5)],
                "attestation": "C" if attestation < profile.attested_c
                else "B" if attestation < profile.attested_b_or_c else "A",
                "tenant": tenant,
            }
            i += 1
    while upcoming is not None:  # episodes after the last evenly spaced record
        yield {"call_id": f"b{i}", **upcoming[1]}
        i += 1
        upcoming = next(pending, None)


def write_jsonl(path: Path, n: int, seed: int = 1, clis: int = 3000, days: float = 3) -> Path:
    path = Path(path)
    with path.open("w") as handle:
        for record in cdrs(n, clis=clis, seed=seed, days=days):
            handle.write(json.dumps(record) + "\n")
    return path


def inventory_rows(seed: int = 1, clis: int = 3000) -> list[dict]:
    """The numbers inventory of the pool: every valid CLI with its tenant, except about 3% (unlisted)."""
    pool = _pool(seed, clis)
    rng = random.Random(f"cidwatch-bench-inventory-{seed}")
    rows = []
    # The episodic CLIs last, so the other rows draw what they drew without them; then all in number order.
    for cli in [*sorted(pool.clis, key=lambda cli: cli.number), *pool.episodic]:
        if cli.kind == "invalid" or cli.number in pool.unlisted:
            continue
        source = "ported" if rng.random() < 0.2 else "claimed"
        nanp_geographic = cli.number.startswith("+1") and cli.kind == "regular"
        cnam = f"{cli.tenant.upper()} INC" if nanp_geographic and rng.random() < 0.85 else None
        rows.append({"number": cli.number, "source": source, "tenant": cli.tenant, "cnam": cnam})
    return sorted(rows, key=lambda row: row["number"])


def write_inventory(path: Path, seed: int = 1, clis: int = 3000) -> Path:
    import yaml

    path = Path(path)
    with path.open("w") as handle:
        yaml.safe_dump({"numbers": inventory_rows(seed, clis)}, handle, sort_keys=False)
    return path
