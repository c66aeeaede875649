"""Fault cases against the real `unicl` command: bad configs, damaged or hostile model directories,
bad data, CLI misuses, signals and kills, disk problems. Each case runs `python -m unicl ...` as a
subprocess on real files in a folder of its own, with a timeout, and is judged (see `harness`):
correct, clear error, traceback, hang, data lost or wrong.

    PYTHONPATH=src nice -n 10 python -m benchmarks.faults                 # all cases, resumable
    python -m benchmarks.faults --only "bad data" --jobs 2
    python -m benchmarks.faults --rerun-problems                          # after a fix

One JSON per case under RESULTS/cases/ (a case with a result is skipped, so an interrupted run
continues); the Markdown table goes to RESULTS/table.md and stdout. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import bad_configs, bad_data, cli_misuse, disk, interrupts, model_dirs
from .fixtures import DEMO, ROOT, build_fixtures
from .harness import Case, run_case, snapshot
from .tables import report

MODULES = (bad_configs, model_dirs, bad_data, cli_misuse, interrupts, disk)
SEQUENTIAL = {interrupts.CATEGORY}  # timing-sensitive: never beside another case
COMMAND = "PYTHONPATH=src nice -n 10 python -m benchmarks.faults"


def slug(case: Case) -> str:
    """A file name for the case: readable, unique by a hash of category and name."""
    digest = hashlib.sha1(f"{case.category}/{case.name}".encode()).hexdigest()[:8]
    words = re.sub(r"[^A-Za-z0-9]+", "-", case.name).strip("-")[:60]
    return f"{re.sub(r'[^a-z]+', '-', case.category.lower())}--{words}-{digest}"


def run_one(case: Case, results: Path, keep: bool) -> dict:
    path = results / "cases" / f"{slug(case)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    folder = results / "work" / slug(case)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    record = run_case(case, folder.resolve())
    path.write_text(json.dumps(record, indent=2) + "\n")
    if record["verdict"] in ("correct", "clear error") and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{record['verdict']:<12} {record['seconds']:6.1f} s  {case.category} / {case.name}", flush=True)  # fmt: skip
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    parser.add_argument("--results", type=Path, default=ROOT / "runs" / "faults")
    parser.add_argument("--only", action="append", default=[], help="categories containing this")
    parser.add_argument("--match", help="only cases whose name contains this")
    parser.add_argument("--jobs", type=int, default=1, help="cases at once (signals: always 1)")
    parser.add_argument("--rerun-problems", action="store_true", help="run again every case "
                        "whose result is not a correct result or a clear error")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep every case's folder")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    # Children inherit an ignored SIGINT (as in a shell's background job) and would never see
    # Ctrl-C; with a handler here they start with the default, as from a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    results = args.results.resolve()
    (results / "cases").mkdir(parents=True, exist_ok=True)
    fixtures = build_fixtures(results / "fixtures")
    cases = [case for module in MODULES for case in module.cases(fixtures)]
    names = [(c.category, c.name) for c in cases]
    assert len(set(names)) == len(names), "two cases share a name"
    chosen = [
        case
        for case in cases
        if (not args.only or any(o.lower() in case.category.lower() for o in args.only))
        and (args.match is None or args.match.lower() in case.name.lower())
    ]
    if args.list:
        print("\n".join(f"{c.category} / {c.name} [{c.expect}]" for c in chosen))
        return 0
    if args.rerun_problems:
        for case in chosen:
            path = results / "cases" / f"{slug(case)}.json"
            if path.is_file() and json.loads(path.read_text())["verdict"] not in (
                "correct",
                "clear error",
            ):
                path.unlink()

    shared = {"fixtures": snapshot(results / "fixtures"), "demo": snapshot(DEMO)}
    parallel = [c for c in chosen if c.category not in SEQUENTIAL]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        records = list(pool.map(lambda c: run_one(c, results, args.keep), parallel))
    records += [run_one(c, results, args.keep) for c in chosen if c.category in SEQUENTIAL]
    changed = [name for name, before in shared.items() if snapshot(
        results / "fixtures" if name == "fixtures" else DEMO) != before]  # fmt: skip

    categories = list(dict.fromkeys(module.CATEGORY for module in MODULES))
    text = report(records, [c for c in categories if any(r["category"] == c for r in records)], COMMAND)  # fmt: skip
    if changed:
        text += f"\nShared inputs changed during the run: {', '.join(changed)}\n"
    (results / "table.md").write_text(text)
    print(text)
    return 0


sys.exit(main())
