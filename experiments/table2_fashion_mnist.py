"""Table 2 analogue: cross-entropy vs SupCon vs UniCL on Fashion-MNIST, same encoder and budget.

`unicl-tiny` (a 2.2M-parameter ResNet + text transformer at 32 px) is trained from scratch on the
60,000 Fashion-MNIST training images with each objective, for the same number of steps, batch
size, learning rate and augmentation, with 3 seeds. Scored on the 10,000 test images:

- `probe`: linear-probe top-1 of the frozen image embeddings (the common protocol for all three;
  the probe is fitted on the training images, its L2 strength chosen on a validation split);
- `zero-shot`: UniCL only, top-1 of its own text classifier over the class names (the paper's
  way of reading UniCL's accuracy: no extra classifier is trained).

Run: `python experiments/table2_fashion_mnist.py --variant short|full [--out DIR]`.
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
    mean_and_spread,
    parse_arguments,
    percent,
    probe_top1,
    train_run,
    write_results,
    zeroshot_top1,
)

OBJECTIVES = ("ce", "supcon", "unicl")
VARIANTS = {
    # 3,200 training samples per run; the probe is fitted on the demo's 10,000-image subset of
    # the training set and scored on the 10,000 test images.
    "short": {
        "budget": Budget(steps=50, batch_size=64),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # one epoch per run (470 steps of 128), probe and test as in the short variant.
    "medium": {
        "budget": Budget(steps=470, batch_size=128),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # about 3 epochs per run; the probe is fitted on all 60,000 training images.
    "full": {
        "budget": Budget(steps=1400, batch_size=128),
        "seeds": (0, 1, 2),
        "probe_train": fashion_mnist("train"),
        "test": fashion_mnist("t10k"),
    },
    # under a minute: the whole pipeline on the demo subset (tests).
    "tiny": {
        "budget": Budget(steps=2, batch_size=16),
        "seeds": (0,),
        "probe_train": demo_fashion_mnist("train"),
        "test": demo_fashion_mnist("t10k"),
    },
}


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"table2-{args.variant}"
    budget = settings["budget"]
    runs = {}
    for objective in OBJECTIVES:
        for seed in settings["seeds"]:
            name = f"{objective}-seed{seed}"
            model_dir, seconds = train_run(
                out / name, [fashion_mnist("train")], objective, budget, seed, threads=args.threads
            )
            model = load_model(model_dir)
            scores = {
                "probe_top1": probe_top1(model, settings["probe_train"], settings["test"]),
                "train_seconds": seconds,
            }
            if objective == "unicl":
                scores["zeroshot_top1"] = zeroshot_top1(model, settings["test"])
            runs[name] = scores
            print(name, scores, flush=True)
    summary = {}
    rows = []
    for objective in OBJECTIVES:
        named = [runs[f"{objective}-seed{seed}"] for seed in settings["seeds"]]
        summary[objective] = {
            "probe_top1": mean_and_spread([r["probe_top1"] for r in named]),
        }
        zeroshot = "n/a"
        if objective == "unicl":
            summary[objective]["zeroshot_top1"] = mean_and_spread(
                [r["zeroshot_top1"] for r in named]
            )
            zeroshot = percent(summary[objective]["zeroshot_top1"])
        rows.append([objective, percent(summary[objective]["probe_top1"]), zeroshot])
    table = markdown_table(["objective", "linear probe top-1 (%)", "zero-shot top-1 (%)"], rows)
    results = {
        "settings": {
            "variant": args.variant,
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "lr": budget.lr,
            "seeds": list(settings["seeds"]),
            "probe_train": settings["probe_train"],
            "test": settings["test"],
        },
        "runs": runs,
        "summary": summary,
    }
    write_results(args.results or out, results, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
