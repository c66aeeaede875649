"""Batch-size robustness: UniCL, CLIP and cross-entropy at three batch sizes on Fashion-MNIST.

The paper reports that "UniCL is robust to the variation of batch size". Here `unicl-tiny` is
trained on the 60,000 Fashion-MNIST training images with UniCL, with CLIP (labels ignored: the
other images of a class and their prompts are negatives, more of them the larger the batch) and
with cross-entropy, at three batch sizes, each run seeing the same number of samples (fewer steps
for larger batches), with the learning rate scaled linearly with the batch (`lr * batch / 128`).
Scored on the 10,000 test images: linear-probe top-1 for every objective (fitted on the demo's
10,000 training images), zero-shot top-1 for UniCL and CLIP, the trained head's top-1 for CE.

Run: `python experiments/batch_size.py --variant short|medium|full [--out DIR] [--results DIR]`.
Runs go seed by seed; each writes `runs/<run>.json` under `--results` and is skipped when that
exists, so the same command resumes an interrupted experiment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (
    Budget,
    demo_fashion_mnist,
    fashion_mnist,
    head_top1,
    load_model,
    markdown_table,
    parse_arguments,
    percent,
    probe_top1,
    run_result,
    summarize,
    train_run,
    write_results,
    zeroshot_top1,
)

OBJECTIVES = ("ce", "unicl", "clip")
REFERENCE_BATCH = 128
VARIANTS = {
    # 3,072 samples per run, one seed: minutes.
    "short": {
        "samples": 3072,
        "batch_sizes": (16, 64, 256),
        "seeds": (0,),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # 76,800 samples per run (1.3 epochs): 300 steps at the largest batch.
    "medium": {
        "samples": 76_800,
        "batch_sizes": (16, 64, 256),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # 3 epochs per run: 352 steps at the largest batch.
    "full": {
        "samples": 180_224,
        "batch_sizes": (32, 128, 512),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # the pipeline in about a minute (tests).
    "tiny": {
        "samples": 64,
        "batch_sizes": (16, 32),
        "seeds": (0,),
        "probe_train": {**demo_fashion_mnist("train"), "take": ":1000"},
        "test": demo_fashion_mnist("t10k"),
    },
}
SCORES = (
    ("ce", "probe_top1"),
    ("ce", "head_top1"),
    ("unicl", "probe_top1"),
    ("unicl", "zeroshot_top1"),
    ("clip", "probe_top1"),
    ("clip", "zeroshot_top1"),
)


def score_run(run_dir: Path, objective: str, settings: dict, seconds: float, steps: int) -> dict:
    model = load_model(run_dir / "model")
    scores = {
        "steps": steps,
        "probe_top1": probe_top1(model, settings["probe_train"], settings["test"]),
        "train_seconds": seconds,
    }
    if objective == "ce":
        scores["head_top1"] = head_top1(run_dir, model, settings["test"])
    else:
        scores["zeroshot_top1"] = zeroshot_top1(model, settings["test"])
    return scores


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"batch-size-{args.variant}"
    results_dir = args.results or out
    runs = {}
    for seed in settings["seeds"]:
        for objective in OBJECTIVES:
            for batch_size in settings["batch_sizes"]:
                name = f"{objective}-batch{batch_size}-seed{seed}"
                run_dir = out / name
                budget = Budget(steps=settings["samples"] // batch_size, batch_size=batch_size)

                def compute(objective=objective, budget=budget, seed=seed, run_dir=run_dir):
                    _, seconds = train_run(
                        run_dir,
                        [fashion_mnist("train")],
                        objective,
                        budget,
                        seed,
                        threads=args.threads,
                        reference_batch=REFERENCE_BATCH,
                    )
                    return score_run(run_dir, objective, settings, seconds, budget.steps)

                runs[name] = run_result(results_dir, name, compute)
                print(name, runs[name], flush=True)
    groups = {
        f"{objective}-batch{b}": [f"{objective}-batch{b}-seed{s}" for s in settings["seeds"]]
        for objective in OBJECTIVES
        for b in settings["batch_sizes"]
    }
    metrics = sorted({metric for _, metric in SCORES})
    summary = summarize(runs, groups, metrics)
    header = ["objective", "score"] + [f"batch {b}" for b in settings["batch_sizes"]]
    rows = [
        [objective, metric.replace("_top1", " top-1 (%)")]
        + [percent(summary[f"{objective}-batch{b}"].get(metric)) for b in settings["batch_sizes"]]
        for objective, metric in SCORES
    ]
    results = {
        "settings": {
            "variant": args.variant,
            "samples_per_run": settings["samples"],
            "batch_sizes": list(settings["batch_sizes"]),
            "seeds": list(settings["seeds"]),
            "lr": f"{Budget(1, 1).lr} * batch / {REFERENCE_BATCH}",
            "probe_train": settings["probe_train"],
            "test": settings["test"],
        },
        "runs": runs,
        "summary": summary,
    }
    write_results(results_dir, results, markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
