"""Rule-engine throughput of the current tree against a baseline revision, measured in the same run.

Run: .venv/bin/python bench/engine_throughput.py [--records N] [--baseline REV | --no-baseline] [--keep DIR]
                                                 [--replay-only] [--examples]

Generates N CDRs (default 1,000,000) with bench/generate.py into a JSONL file, plus its number
inventory (YAML), then measures, for the current tree and for the baseline tree (a git worktree of
REV, default origin/main if it exists else HEAD; see bench/baseline.py), with this same script file
run as a subprocess in each tree so both run identical bench code:

(a) the engine alone: the records parsed into CDR objects first (not timed), then
    `for cdr in cdrs: engine.process(cdr, state)` over in-memory state (DictState), timed;
(b) `python -m cidwatch replay FILE --inventory INV --out DIR` end to end: wall time, CDRs/s, peak RSS
    of its largest process (/usr/bin/time -v, else getrusage of a wrapper process) and, where /proc
    exists, the peak of the RSS of all its processes together (a replay may start worker processes;
    sampled every 0.25 s);
(c) the decisions of (b) by rule and kind in both trees, and whether the two decisions.jsonl files
    hold the same set of decision ids;
(d) with --examples, the engine loop (a) of the current tree again with every example threshold pack
    enabled (`load_packs(examples=True)`: rules/packs/{runaway,asr,shortcalls,sequential}.yaml), reported
    beside (a) with the default packs, and their ratio, with each example rule's decisions by kind (the
    generated traffic's episodic CLIs make them fire from 50,000 records; see bench/generate.py).

Absolute figures depend on the machine and its load; compare only the ratios to the baseline of the
same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
RESULT_MARK = "ENGINE_THROUGHPUT_RESULT "
TIME_V = "/usr/bin/time"
# Peak RSS without /usr/bin/time: a fresh wrapper process whose only child is the replay.
RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call([sys.executable, *sys.argv[1:]])\n"
    "print(f'Maximum resident set size (kbytes): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}',"
    " file=sys.stderr)\n"
    "sys.exit(code)\n"
)


# -- worker: runs inside one tree (cwd and PYTHONPATH = that tree) ------------------------------------


class ApiMissing(Exception):
    """Neither known form of an engine import works in this tree."""


def _import_first(*candidates: tuple[str, str]):
    """The first of (module, name) that imports; ApiMissing naming every attempt otherwise."""
    errors = []
    for module_name, name in candidates:
        try:
            module = __import__(module_name, fromlist=[name])
            return getattr(module, name), module_name
        except (ImportError, AttributeError) as exc:
            errors.append(f"from {module_name} import {name}: {type(exc).__name__}: {exc}")
    raise ApiMissing("; ".join(errors))


def engine_api() -> dict:
    """The engine API of this tree; the restructuring moves modules, so each piece has known forms."""
    # Written as package lists: the restructuring renames these modules with repository-wide replaces.
    parse_cdr, parse_from = _import_first(*((f"{package}.cdr", "parse_cdr") for package in ("rules", "streams")))
    load_packs, packs_from = _import_first(*((f"rules.{module}", "load_packs") for module in ("packs", "pack")))
    load_inventory, inventory_from = _import_first(("rules.inventory", "load_inventory"))
    engine_class, engine_from = _import_first(("rules.engine", "Engine"))
    state_class, state_from = _import_first(("rules.state", "DictState"))
    return {
        "parse_cdr": parse_cdr, "load_packs": load_packs, "load_inventory": load_inventory,
        "Engine": engine_class, "DictState": state_class,
        "from": [parse_from, packs_from, inventory_from, engine_from, state_from],
    }


def foreign_modules(tree: Path) -> list[str]:
    """Project modules imported from outside `tree` (the editable install of another checkout)."""
    foreign = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in ("rules", "streams", "cidwatch"):
            continue
        location = getattr(module, "__file__", None)
        if location and not Path(location).resolve().is_relative_to(tree):
            foreign.append(f"{name} ({location})")
    return foreign


def worker(data: Path, inventory_path: Path, examples: bool = False) -> dict:
    tree = Path.cwd().resolve()
    try:
        api = engine_api()
    except ApiMissing as exc:
        return {"error": f"engine API not found in {tree}: {exc}"}
    lines = data.read_text().splitlines()
    t0 = time.perf_counter()
    cdrs = [api["parse_cdr"](json.loads(line)) for line in lines]
    parse_s = time.perf_counter() - t0
    del lines
    packs = api["load_packs"](examples=True) if examples else api["load_packs"]()
    # The example rules: what the example packs add to the default ones (their rows are `example: true`).
    example_rules = sorted(set(packs.rules) - set(api["load_packs"]().rules)) if examples else []
    engine = api["Engine"](packs, api["load_inventory"](inventory_path), None)
    state = api["DictState"]()
    # The restructured engine's store-level entry point is `judge(cdr, store)` (its `process` takes one
    # subject's state); before it, `process(cdr, state)` took the whole store.
    process = getattr(engine, "judge", None) or engine.process
    # The parsed input is this harness's, not the engine's: a consumer loop holds one record at a time.
    # Frozen out of the cyclic collector, its million objects are not rescanned by every full collection
    # the engine's own allocations trigger (about 18% of the loop at 1M CDRs); the engine's state is not
    # frozen and is collected as it would be anywhere.
    gc.collect()
    gc.freeze()
    fired = []
    t0 = time.perf_counter()
    for cdr in cdrs:
        outcome = process(cdr, state)
        if outcome.decisions:
            fired.extend(outcome.decisions)
    engine_s = time.perf_counter() - t0
    return {
        "tree": str(tree), "imports": api["from"], "foreign_modules": foreign_modules(tree),
        "entry_point": f"engine.{process.__name__}",
        "records": len(cdrs), "parse_s": parse_s, "engine_s": engine_s, "rules": len(packs.rules),
        "loop_decisions": dict(Counter(f"{d.rule} {d.kind}" for d in fired)), "example_rules": example_rules,
    }


def worker_main(args: argparse.Namespace) -> int:
    result = worker(args.data, args.inventory, args.examples)
    print(RESULT_MARK + json.dumps(result))
    return 1 if "error" in result else 0


# -- orchestrator ----------------------------------------------------------------------------------------


class TreeRss:
    """The most memory this process's descendants held at once (the sum of their RSS), sampled."""

    def __init__(self, every: float = 0.25) -> None:
        self.peak_mb: float | None = 0.0 if Path("/proc/self/statm").exists() else None
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeRss:
        if self.peak_mb is not None:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        me, page = os.getpid(), os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(self._every):
            parents, rss = {}, {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    statm = Path(f"/proc/{entry}/statm").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                    rss[int(entry)] = int(statm.split()[1]) * page
                except (OSError, ValueError, IndexError):
                    continue
            total = 0
            for pid, size in rss.items():
                ancestor = parents.get(pid)
                while ancestor is not None and ancestor != me:
                    ancestor = parents.get(ancestor)
                if ancestor == me:
                    total += size
            assert self.peak_mb is not None
            self.peak_mb = max(self.peak_mb, total / 2**20)


def engine_loop(tree: Path, data: Path, inventory: Path, examples: bool = False) -> dict:
    """(a), or (d) with `examples`: the engine loop of one tree in a fresh subprocess."""
    from bench.baseline import run_in

    argv = [str(SCRIPT), "--worker", "--data", str(data), "--inventory", str(inventory)]
    loop = run_in(tree, [*argv, "--examples"] if examples else argv)
    marked = [line for line in loop.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if marked:
        return json.loads(marked[-1][len(RESULT_MARK):])
    return {"error": f"engine loop exited {loop.returncode}: {_tail(loop.stderr or loop.stdout)}"}


def measure(tree: Path, data: Path, inventory: Path, out: Path, loop_too: bool = True) -> dict:
    """(a) the in-process loop and (b) replay, for one tree, each in a fresh subprocess."""
    from bench.baseline import python_command, run_in

    figures: dict = {"tree": str(tree)}
    if loop_too:
        figures.update(engine_loop(tree, data, inventory))
    if figures.get("error"):
        print(f"  {tree}: {figures['error']}", file=sys.stderr)
    for module in figures.get("foreign_modules", []):
        print(f"  warning: {tree}: {module} was imported from outside the tree", file=sys.stderr)

    replay_argv = ["-m", "cidwatch", "replay", str(data), "--inventory", str(inventory), "--out", str(out)]
    t0 = time.perf_counter()
    with TreeRss() as tree_rss:
        if Path(TIME_V).exists():
            replay = run_in(tree, replay_argv, prefix=[TIME_V, "-v"])
        else:  # the wrapper imports nothing of the project; the replay it starts is isolated
            replay = run_in(tree, ["-c", RUSAGE_WRAPPER, *python_command(replay_argv)[1:]], isolate=False)
    figures["replay_s"] = time.perf_counter() - t0
    figures["replay_tree_rss_mb"] = tree_rss.peak_mb
    figures["replay_exit"] = replay.returncode
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", replay.stderr)
    own_stderr = re.split(r"^\s*Command (?:being timed|exited)|^Maximum resident set size", replay.stderr,
                          maxsplit=1, flags=re.MULTILINE)[0]
    figures["replay_rss_mb"] = int(rss.group(1)) / 1024 if rss else None
    decisions_path = out / "decisions.jsonl"
    if replay.returncode != 0 or not decisions_path.is_file():
        figures["replay_error"] = f"replay exited {replay.returncode}: {_tail(own_stderr)}"
        print(f"  {tree}: {figures['replay_error']}", file=sys.stderr)
        return figures
    by_rule: Counter[str] = Counter()
    ids = set()
    with decisions_path.open() as handle:
        for line in handle:
            decision = json.loads(line)
            by_rule[f"{decision['rule']} {decision['kind']}"] += 1
            ids.add(decision["id"])
    figures["replay_decisions"] = dict(by_rule)
    figures["replay_ids"] = ids
    return figures


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _rate(figures: dict, seconds_key: str) -> float | None:
    seconds = figures.get(seconds_key)
    records = figures.get("records_total")
    return records / seconds if seconds and records else None


def print_examples(n: int, default: dict, examples: dict) -> None:
    """(d): the engine loop with the default packs and with every example pack enabled, same tree, same run."""
    print()
    if "error" in examples or "error" in default:
        print(f"engine loop with the example packs: {examples.get('error') or default.get('error')}")
        return
    plain, extra = n / default["engine_s"], n / examples["engine_s"]
    print(f"engine loop, default packs ({default['rules']} rules):      {plain:>12,.0f} CDRs/s")
    print(f"engine loop, every example pack enabled ({examples['rules']} rules): {extra:>12,.0f} CDRs/s"
          f"   ratio {extra / plain:.2f}")
    print_example_rules(examples)
    new = {key: count for key, count in examples.get("loop_decisions", {}).items()
           if key not in default.get("loop_decisions", {})}
    print("  decisions only with the example packs: "
          + (", ".join(f"{key} {count:,}" for key, count in sorted(new.items())) or "none"))


def print_example_rules(examples: dict) -> None:
    """Each example rule's decisions in the loop by kind ("none" for a rule that never decided), so the
    reader sees whether the rate above is that of rules that decide or only of their counting."""
    decisions = examples.get("loop_decisions", {})
    rules = examples.get("example_rules", [])
    width = max((len(rule) for rule in rules), default=0) + 2
    print("  decisions by example rule (engine loop):" + ("" if rules else " no example rule found"))
    for rule in rules:
        kinds = sorted((key.split(" ", 1)[1], count) for key, count in decisions.items()
                       if key.split(" ", 1)[0] == rule)
        print(f"    {rule:<{width}}" + (", ".join(f"{kind} {count:,}" for kind, count in kinds) or "none"))


def print_report(n: int, current: dict, baseline: dict | None, baseline_label: str) -> None:
    for figures in (current, baseline or {}):
        figures["records_total"] = n
    rows = [
        ("engine loop, CDRs/s", _rate(current, "engine_s"), baseline and _rate(baseline, "engine_s"), "{:,.0f}"),
        ("engine loop, s", current.get("engine_s"), baseline and baseline.get("engine_s"), "{:.2f}"),
        ("parse into CDRs (untimed in loop), s", current.get("parse_s"), baseline and baseline.get("parse_s"),
         "{:.2f}"),
        ("replay end to end, CDRs/s", _ok_replay(current, _rate(current, "replay_s")),
         baseline and _ok_replay(baseline, _rate(baseline, "replay_s")), "{:,.0f}"),
        ("replay wall time, s", _ok_replay(current, current.get("replay_s")),
         baseline and _ok_replay(baseline, baseline.get("replay_s")), "{:.2f}"),
        ("replay peak RSS, MB", _ok_replay(current, current.get("replay_rss_mb")),
         baseline and _ok_replay(baseline, baseline.get("replay_rss_mb")), "{:,.0f}"),
        ("replay peak RSS, all processes, MB", _ok_replay(current, current.get("replay_tree_rss_mb")),
         baseline and _ok_replay(baseline, baseline.get("replay_tree_rss_mb")), "{:,.0f}"),
        ("decisions (replay)", _total(current.get("replay_decisions")),
         baseline and _total(baseline.get("replay_decisions")), "{:,}"),
        ("decisions (engine loop)", _total(current.get("loop_decisions")),
         baseline and _total(baseline.get("loop_decisions")), "{:,}"),
    ]
    width = max(len(row[0]) for row in rows) + 2
    print()
    for name, figures in (("current", current), ("baseline", baseline)):
        if figures and figures.get("imports"):
            print(f"{name}: loop calls {figures['entry_point']}; imports from {', '.join(figures['imports'])}")
    print()
    print(f"{'figure':<{width}}{'current':>14}{'baseline':>14}{'ratio':>8}   (ratio = current / baseline)")
    for label, now, base, fmt in rows:
        ratio = f"{now / base:.2f}" if now and base else "-"
        print(f"{label:<{width}}{_fmt(now, fmt):>14}{_fmt(base, fmt):>14}{ratio:>8}")
    print()
    current_rules = current.get("replay_decisions") or {}
    base_rules = (baseline or {}).get("replay_decisions") or {}
    print(f"{'decisions by rule (replay)':<{width}}{'current':>14}{'baseline':>14}")
    for key in sorted(set(current_rules) | set(base_rules)):
        base_text = f"{base_rules.get(key, 0):,}" if baseline else "-"
        print(f"  {key:<{width - 2}}{current_rules.get(key, 0):>14,}{base_text:>14}")
    loop_rules = current.get("loop_decisions") or {}
    if loop_rules:
        print("engine loop (no final expiry, so no end-of-input unblocks): "
              + ", ".join(f"{key} {count:,}" for key, count in sorted(loop_rules.items())))
    if baseline is None:
        return
    print()
    current_ids, base_ids = current.get("replay_ids"), baseline.get("replay_ids")
    if current_ids is None or base_ids is None:
        print("decisions.jsonl ids: not compared (a replay failed)")
    elif current_ids == base_ids:
        print(f"decisions.jsonl ids: equal sets ({len(current_ids):,} ids) in both trees")
    else:
        print(f"decisions.jsonl ids: DIFFER: {len(current_ids - base_ids):,} only in current, "
              f"{len(base_ids - current_ids):,} only in baseline ({baseline_label})")


def _ok_replay(figures: dict, value: float | None) -> float | None:
    return None if figures.get("replay_error") else value


def _total(counts: dict | None) -> int | None:
    return None if counts is None else sum(counts.values())


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="CDRs to generate (default 1,000,000)")
    parser.add_argument("--days", type=float, default=3, help="days the CDRs are spread over (default 3; the state "
                        "replay keeps grows with the calls of a day, the columns it sorts with the records)")
    parser.add_argument("--baseline", metavar="REV", help="baseline revision (default: origin/main if it exists, "
                        "else HEAD)")
    parser.add_argument("--no-baseline", action="store_true", help="measure the current tree only")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the data and replay outputs to DIR and "
                        "keep them (default: a temporary directory, deleted)")
    parser.add_argument("--replay-only", action="store_true", help="skip the engine loop (it holds every CDR as "
                        "an object: several GB for millions)")
    parser.add_argument("--examples", action="store_true", help="also run the current tree's engine loop with "
                        "every example threshold pack enabled, and report it beside the default packs' loop")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)

    sys.path.insert(0, str(REPO))  # the orchestrator's own helpers; the workers import their tree's code
    from bench import baseline as baseline_mod
    from bench.generate import write_inventory, write_jsonl

    base_tree, base_label = None, ""
    if not args.no_baseline:
        rev = args.baseline or baseline_mod.default_rev()
        sha = baseline_mod.resolve(rev)
        base_tree = baseline_mod.worktree(rev)
        base_label = f"{rev} = {sha[:12]}"
    work = args.keep or Path(tempfile.mkdtemp(prefix="cidwatch-engine-bench-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        data = write_jsonl(work / "bench.jsonl", args.records, days=args.days)
        inventory = write_inventory(work / "inventory.yaml")
        generated_s = time.perf_counter() - t0
        inventory_size = len(Path(inventory).read_text().split("- number:")) - 1
        print(f"{args.records:,} CDRs over {args.days:g} days ({data.stat().st_size / 1e6:.0f} MB JSONL) and "
              f"{inventory_size:,} inventory numbers generated in {generated_s:.1f} s into {work}")
        print(f"current tree:  {REPO}")
        print(f"baseline tree: {base_tree} ({base_label})" if base_tree else "baseline: none (--no-baseline)")
        print("measuring the current tree ...", flush=True)
        current = measure(REPO, data, inventory, work / "out-current", not args.replay_only)
        baseline = None
        if base_tree is not None:
            print("measuring the baseline tree ...", flush=True)
            baseline = measure(base_tree, data, inventory, work / "out-baseline", not args.replay_only)
        print_report(args.records, current, baseline, base_label)
        if args.examples and not args.replay_only:
            print("measuring the current tree's engine loop with the example packs ...", flush=True)
            print_examples(args.records, current, engine_loop(REPO, data, inventory, examples=True))
        print(f"\nrun on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; compare the ratios, not the "
              "absolute figures, across runs")
        failed = "error" in current or "replay_error" in current
        return 1 if failed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
