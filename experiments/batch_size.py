"""Batch-size robustness: UniCL and cross-entropy at three batch sizes on Fashion-MNIST.

The paper reports that "UniCL is robust to the variation of batch size". Here `unicl-tiny` is
trained on the 60,000 Fashion-MNIST training images with UniCL and with cross-entropy at three
batch sizes (16, 64, 256 in the short variant; 32, 128, 512 in the full one), each run seeing the same number of samples (fewer steps for larger batches), with the
learning rate scaled linearly with the batch (`lr * batch / 128`). Scored on the 10,000 test images:
linear-probe top-1 for both objectives (probe fitted as in `table2_fashion_mnist.py`) and UniCL's
zero-shot top-1.

Run: `python experiments/batch_size.py --variant short|full [--out DIR]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (
    Budget,
    demo_fashion_mnist,
    fashion_mnist,
    load_model,
    markdown_table,
    parse_arguments,
    probe_top1,
    train_run,
    write_results,
    zeroshot_top1,
)

OBJECTIVES = ("ce", "unicl")
REFERENCE_BATCH = 128
VARIANTS = {
    # 3,072 samples per run.
    "short": {
        "samples": 3072,
        "batch_sizes": (16, 64, 256),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # 3 epochs per run.
    "full": {
        "samples": 180_224,
        "batch_sizes": (32, 128, 512),
        "probe_train": fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # the pipeline in about a minute (tests).
    "tiny": {
        "samples": 64,
        "batch_sizes": (16, 32),
        "probe_train": demo_fashion_mnist("train"),
        "test": demo_fashion_mnist("t10k"),
    },
}


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"batch-size-{args.variant}"
    runs = {}
    for objective in OBJECTIVES:
        for batch_size in settings["batch_sizes"]:
            name = f"{objective}-batch{batch_size}"
            budget = Budget(steps=settings["samples"] // batch_size, batch_size=batch_size)
            model_dir, seconds = train_run(
                out / name,
                [fashion_mnist("train")],
                objective,
                budget,
                seed=0,
                threads=args.threads,
                reference_batch=REFERENCE_BATCH,
            )
            model = load_model(model_dir)
            runs[name] = {
                "steps": budget.steps,
                "probe_top1": probe_top1(model, settings["probe_train"], settings["test"]),
                "train_seconds": seconds,
            }
            if objective == "unicl":
                runs[name]["zeroshot_top1"] = zeroshot_top1(model, settings["test"])
            print(name, runs[name], flush=True)
    header = ["objective", "score"] + [f"batch {b}" for b in settings["batch_sizes"]]
    rows = []
    for objective, metric in (
        ("ce", "probe_top1"),
        ("unicl", "probe_top1"),
        ("unicl", "zeroshot_top1"),
    ):
        cells = [
            f"{100 * runs[f'{objective}-batch{b}'][metric]:.1f}" for b in settings["batch_sizes"]
        ]
        rows.append([objective, metric.replace("_top1", " top-1 (%)"), *cells])
    results = {
        "settings": {
            "variant": args.variant,
            "samples_per_run": settings["samples"],
            "batch_sizes": list(settings["batch_sizes"]),
            "lr": f"{Budget(1, 1).lr} * batch / {REFERENCE_BATCH}",
            "probe_train": settings["probe_train"],
            "test": settings["test"],
        },
        "runs": runs,
    }
    write_results(out, results, markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
