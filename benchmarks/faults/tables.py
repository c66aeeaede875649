"""The Markdown report of the fault cases: one table row per category (cases tried and the count
of each verdict), then every case that is neither a correct result nor a clear error."""

from __future__ import annotations

from collections import Counter

from .harness import VERDICTS


def summary_table(records: list[dict], categories: list[str]) -> str:
    header = ["category", "cases tried", *VERDICTS]
    rows = [header, ["---"] * len(header)]
    totals: Counter = Counter()
    for category in categories:
        counts = Counter(r["verdict"] for r in records if r["category"] == category)
        tried = sum(counts.values())
        totals.update(counts)
        rows.append([category, str(tried), *(str(counts[v]) for v in VERDICTS)])
    rows.append(["**all**", f"**{sum(totals.values())}**", *(f"**{totals[v]}**" for v in VERDICTS)])
    return "\n".join(f"| {' | '.join(row)} |" for row in rows)


def problems(records: list[dict]) -> str:
    """A bullet per case that is not `correct` or `clear error`."""
    bad = [r for r in records if r["verdict"] not in ("correct", "clear error")]
    if not bad:
        return "Every case ended in a correct result or a clear error."
    return "\n".join(
        f"- {r['category']} / {r['case']}: **{r['verdict']}** {r['detail']}".rstrip()
        for r in sorted(bad, key=lambda r: (r["category"], r["case"]))
    )


def report(records: list[dict], categories: list[str], command: str) -> str:
    seconds = sum(r["seconds"] for r in records)
    return (
        f"{summary_table(records, categories)}\n\n"
        f"{len(records)} cases, {seconds / 60:.1f} min of case time. Command: `{command}`\n\n"
        f"Cases that are neither a correct result nor a clear error:\n\n{problems(records)}\n"
    )
