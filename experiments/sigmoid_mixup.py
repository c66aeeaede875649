"""The label-aware sigmoid objective against softmax UniCL at three batch sizes, and label-aware
mixup/cutmix with each, on the demo data.

`unicl-tiny` is trained from scratch as `make demo` trains it (`configs/demo.yaml`: 10,000
Fashion-MNIST images with class prompts and 1,000 captioned emoji, unbalanced, its augmentation,
learning rate 5e-3 at batch 128) with `unicl` (the softmax UniCL loss) and `unicl-sigmoid` (the
label-aware sigmoid loss), at three batch sizes with the same number of samples per run and the
learning rate scaled linearly (`lr * batch / 128`); then at the demo's batch size with
`data.augment` mixup 0.8 and cutmix 1.0 (switch 0.5) added. Scored by zero-shot top-1 on the
demo's 2,000 held-out Fashion-MNIST test images.

The `lite` variant repeats the comparison from the pretrained `unicl-lite` (ImageNet
EfficientNet-Lite0 and MiniLM), trained as `experiments/synergy_pretrained.py` trains it (image
tower locked, text tower locked but its last layer, 128 px, learning rate 1e-3 at batch 64).

Run: `python experiments/sigmoid_mixup.py --variant short|demo|lite [--out DIR] [--results DIR]`.
Runs go seed by seed; each writes `runs/<run>.json` under `--results` and is skipped when that
exists, so the same command resumes an interrupted experiment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (
    EMOJI_TRAIN,
    Budget,
    demo_fashion_mnist,
    load_model,
    markdown_table,
    parse_arguments,
    percent,
    run_result,
    summarize,
    train_run,
    write_results,
    zeroshot_top1,
)

OBJECTIVES = ("unicl", "unicl-sigmoid")
REFERENCE_BATCH = 128
LR = 5.0e-3
LITE = {
    "name": "unicl-lite",
    "overrides": {"image_size": 128, "context_length": 32},
    "lock_image": {"unlocked_groups": 0},
    "lock_text": {"unlocked_groups": 1},
}
"""`unicl-lite` as `experiments/synergy_pretrained.py` trains it."""
DEMO_AUGMENT = {"scale": [0.85, 1.0], "jitter": 0.1, "flip_p": 0.5}
"""`configs/demo.yaml`'s augmentation."""
MIX = {**DEMO_AUGMENT, "mixup": 0.8, "cutmix": 1.0, "mix_prob": 1.0, "mix_switch_prob": 0.5}
VARIANTS = {
    # 19,200 samples per run: 150 steps at batch 128, under a third of the demo's budget.
    "short": {"samples": 19_200, "batch_sizes": (16, 64, 128), "seeds": (0, 1, 2)},
    # 64,000 samples per run, the demo's budget (500 steps at 128).
    "demo": {"samples": 64_000, "batch_sizes": (16, 64, 128), "seeds": (0, 1, 2)},
    # the pretrained unicl-lite, 6,400 samples per run (100 steps at batch 64).
    "lite": {
        "samples": 6_400,
        "batch_sizes": (16, 64),
        "seeds": (0, 1, 2),
        "model": LITE,
        "lr": 1.0e-3,
        "reference_batch": 64,
    },
    # the pipeline in about a minute (tests).
    "tiny": {"samples": 64, "batch_sizes": (16, 32), "seeds": (0,)},
}


def runs_of(settings: dict) -> list[tuple[str, str, int, bool]]:
    """`(group, objective, batch size, mixing)` of every setting: each objective at each batch
    size, then each with mixing at the largest."""
    largest = max(settings["batch_sizes"])
    plain = [
        (f"{objective}-batch{b}", objective, b, False)
        for objective in OBJECTIVES
        for b in settings["batch_sizes"]
    ]
    mixed = [
        (f"{objective}-batch{largest}-mix", objective, largest, True) for objective in OBJECTIVES
    ]
    return plain + mixed


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"sigmoid-mixup-{args.variant}"
    results_dir = args.results or out
    sources = [demo_fashion_mnist("train"), EMOJI_TRAIN]
    test = demo_fashion_mnist("t10k")
    runs = {}
    for seed in settings["seeds"]:
        for group, objective, batch_size, mixing in runs_of(settings):
            name = f"{group}-seed{seed}"
            run_dir = out / name
            lr = settings.get("lr", LR)
            budget = Budget(steps=settings["samples"] // batch_size, batch_size=batch_size, lr=lr)

            def compute(
                objective=objective, budget=budget, seed=seed, run_dir=run_dir, mixing=mixing
            ):
                _, seconds = train_run(
                    run_dir,
                    sources,
                    objective,
                    budget,
                    seed,
                    threads=args.threads,
                    reference_batch=settings.get("reference_batch", REFERENCE_BATCH),
                    model=settings.get("model"),
                    augment=MIX if mixing else DEMO_AUGMENT,
                    balance=False,
                )
                model = load_model(run_dir / "model")
                return {
                    "steps": budget.steps,
                    "zeroshot_top1": zeroshot_top1(model, test),
                    "train_seconds": seconds,
                }

            runs[name] = run_result(results_dir, name, compute)
            print(name, runs[name], flush=True)
    groups = {
        group: [f"{group}-seed{s}" for s in settings["seeds"]] for group, *_ in runs_of(settings)
    }
    summary = summarize(runs, groups, ["zeroshot_top1"])
    largest = max(settings["batch_sizes"])
    header = (
        ["objective"]
        + [f"batch {b}" for b in settings["batch_sizes"]]
        + [f"batch {largest} + mixup/cutmix"]
    )
    rows = [
        [objective]
        + [
            percent(summary[f"{objective}-batch{b}"].get("zeroshot_top1"))
            for b in settings["batch_sizes"]
        ]
        + [percent(summary[f"{objective}-batch{largest}-mix"].get("zeroshot_top1"))]
        for objective in OBJECTIVES
    ]
    results = {
        "settings": {
            "variant": args.variant,
            "samples_per_run": settings["samples"],
            "batch_sizes": list(settings["batch_sizes"]),
            "seeds": list(settings["seeds"]),
            "lr": f"{settings.get('lr', LR)} * batch / {settings.get('reference_batch', REFERENCE_BATCH)}",
            "model": settings.get("model", {"name": "unicl-tiny"}),
            "augment": DEMO_AUGMENT,
            "balance": False,
            "mixing": MIX,
            "test": test,
        },
        "runs": runs,
        "summary": summary,
    }
    write_results(results_dir, results, markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
