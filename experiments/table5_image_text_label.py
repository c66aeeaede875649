"""Table 5 analogue: UniCL against the paper's CLIP and multi-task baselines on image-label plus
image-text data, and each kind of data alone.

Real data only: Fashion-MNIST (Debian's `dataset-fashion-mnist`) as the image-label data, with 3
classes held out (`HELD_OUT`), and Twemoji images captioned with their Unicode names (npm
`emoji-datasource-twitter`, shipped in `data/demo/emoji/`) as the image-text data. Every run has
the same budget; the settings (`SETTINGS`) are a kind of data and an objective:

- `label`: the 7 seen classes, with `ce` (supervised baseline), `unicl` and `clip` (labels
  ignored: two images of a class and their prompts are negatives of each other);
- `text`: the 1,000 training emoji with their captions, with `unicl` (its captions are all
  distinct, so `clip` would be the same loss);
- `label+text`: both, through the balanced sampler (half of every batch of each kind), with
  `unicl`, `clip` and `multitask` (cross-entropy on the labelled half, CLIP on the captions).

Scored on data held out of every run: zero-shot top-1 on the test images of the 7 seen classes
(7-way) and of the 3 held-out classes (3-way, chance 33%); the classifier head of `ce` and
`multitask` on the 7 seen classes; image<->text recall@1/5 on the 200 held-out emoji, whose
captions no run has seen; and a linear probe of the frozen image embeddings on all 10 classes.

Run: `python experiments/table5_image_text_label.py --variant short|medium|full [--out DIR]
[--results DIR]`.
Runs go seed by seed (every setting of seed 0 first); each run writes `runs/<run>.json` under
`--results` and is skipped when that exists, so the same command resumes an interrupted
experiment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import (
    EMOJI_TEST,
    EMOJI_TRAIN,
    FASHION_MNIST,
    Budget,
    demo_fashion_mnist,
    encode_labelled,
    fashion_mnist,
    head_top1,
    load_model,
    markdown_table,
    parse_arguments,
    percent,
    probe_on,
    run_result,
    summarize,
    train_run,
    write_results,
    zeroshot_subset_top1,
)

from unicl.data.arrays import read_idx
from unicl.data.classes import KNOWN_CLASS_NAMES
from unicl.evaluate import evaluate_retrieval

HELD_OUT = ("trouser", "sandal", "bag")
SETTINGS = (
    ("label", "ce"),
    ("label", "unicl"),
    ("label", "clip"),
    ("text", "unicl"),
    ("label+text", "clip"),
    ("label+text", "multitask"),
    ("label+text", "unicl"),
)
FULL_TEST = {"test": fashion_mnist("t10k"), "head_test_take": None}
"""Scored on the 10,000 Fashion-MNIST test images (the 7,000 of the seen classes for a head)."""
VARIANTS = {
    # the probe fitted on 2,000 of the demo's training images.
    "short": {
        "budget": Budget(steps=80, batch_size=64),
        "seeds": (0, 1, 2),
        "probe_train": {**demo_fashion_mnist("train"), "take": ":2000"},
        **FULL_TEST,
    },
    # the probe fitted on the demo's 10,000 training images.
    "medium": {
        "budget": Budget(steps=500, batch_size=128),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        **FULL_TEST,
    },
    "full": {
        "budget": Budget(steps=1500, batch_size=128),
        "seeds": (0, 1, 2),
        "probe_train": demo_fashion_mnist("train"),
        **FULL_TEST,
    },
    # the pipeline in about a minute (tests): the demo's 2,000 test images.
    "tiny": {
        "budget": Budget(steps=2, batch_size=16),
        "seeds": (0,),
        "probe_train": {**demo_fashion_mnist("train"), "take": ":1000"},
        "test": demo_fashion_mnist("t10k"),
        "head_test_take": ":700",
    },
}
METRICS = (
    "zeroshot_seen_top1",
    "head_seen_top1",
    "zeroshot_held_out_top1",
    "emoji_image_to_text_R@1",
    "emoji_image_to_text_R@5",
    "emoji_text_to_image_R@1",
    "emoji_text_to_image_R@5",
    "probe_top1",
)
HEADER = (
    "training data",
    "objective",
    "seen 7-way zero-shot",
    "seen 7-way head",
    "held-out 3-way zero-shot",
    "emoji I->T R@1",
    "R@5",
    "emoji T->I R@1",
    "R@5",
    "probe 10-way",
)


def split_classes(out: Path) -> tuple[Path, Path]:
    """Write `seen.npz` (train and t10k images of the 7 seen classes) and `held-out.npz` (t10k
    images of the `HELD_OUT` classes), labels renumbered within each, with their class names;
    kept when already written."""
    names = KNOWN_CLASS_NAMES["fashion-mnist"]
    groups = {
        "seen": [i for i, name in enumerate(names) if name not in HELD_OUT],
        "held-out": [names.index(name) for name in HELD_OUT],
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, classes in groups.items():
        path = out / f"{group}.npz"
        paths.append(path)
        if path.is_file():
            continue
        arrays = {"class_names": np.array([names[i] for i in classes])}
        for split in ("train", "t10k") if group == "seen" else ("t10k",):
            images = read_idx(Path(FASHION_MNIST) / f"{split}-images-idx3-ubyte.gz")
            labels = read_idx(Path(FASHION_MNIST) / f"{split}-labels-idx1-ubyte.gz")
            keep = np.isin(labels, classes)
            renumber = {original: new for new, original in enumerate(classes)}
            arrays[f"x_{split}"] = images[keep]
            arrays[f"y_{split}"] = np.array([renumber[int(v)] for v in labels[keep]], np.int64)
        np.savez(path.with_suffix(".tmp.npz"), **arrays)
        path.with_suffix(".tmp.npz").replace(path)
    return paths[0], paths[1]


def run_name(data: str, objective: str, seed: int) -> str:
    return f"{data.replace('+', '-')}-{objective}-seed{seed}"


def score_run(run_dir: Path, objective: str, seen: Path, settings: dict, seconds: float) -> dict:
    """Every score that the run's objective supports (image-only `ce`: its head and the probe).
    The variant's `settings` give the `test` images (all 10 classes, encoded once for the
    zero-shot and probe scores), the `probe_train` source (None: no probe) and how many seen-class
    test images the head is scored on (`head_test_take`, None: all)."""
    model = load_model(run_dir / "model")
    test = encode_labelled(model, settings["test"])
    scores = {"train_seconds": seconds}
    if settings["probe_train"] is not None:
        scores["probe_top1"] = probe_on(model, settings["probe_train"], test)
    if objective in ("ce", "multitask"):
        seen_test = {"location": str(seen), "split": "t10k", "take": settings["head_test_take"]}
        scores["head_seen_top1"] = head_top1(run_dir, model, seen_test)
    if objective != "ce":
        seen_names = [name for name in test.class_names if name not in HELD_OUT]
        scores["zeroshot_seen_top1"] = zeroshot_subset_top1(model, test, seen_names)
        scores["zeroshot_held_out_top1"] = zeroshot_subset_top1(model, test, HELD_OUT)
        retrieval = evaluate_retrieval(model, EMOJI_TEST, ks=(1, 5), progress=False)
        scores.update({f"emoji_{k}": v for k, v in retrieval.items() if "@" in k})
    return scores


def run_table(
    out: Path,
    results_dir: Path,
    variant: str,
    settings: dict,
    setting_list: tuple[tuple[str, str], ...],
    *,
    threads: int | None,
    model: dict | None = None,
) -> None:
    """Train (under `out`) and score every (data, objective) of `setting_list` for every seed of
    the variant's `settings` (`budget`, `seeds`, the scoring data of `score_run`), one result
    file per run in `results_dir/runs/` (runs found there are skipped), then write the
    experiment's `results.json` and `results.md` in `results_dir`. `model`: the training config's
    `model` section (default `unicl-tiny` from scratch)."""
    budget = settings["budget"]
    seen, _ = split_classes(out / "data")
    sources = {
        "label": [{"location": str(seen), "split": "train"}],
        "text": [EMOJI_TRAIN],
        "label+text": [{"location": str(seen), "split": "train"}, EMOJI_TRAIN],
    }
    runs = {}
    for seed in settings["seeds"]:
        for data, objective in setting_list:
            name = run_name(data, objective, seed)
            run_dir = out / name

            def compute(data=data, objective=objective, seed=seed, run_dir=run_dir) -> dict:
                _, seconds = train_run(
                    run_dir, sources[data], objective, budget, seed, threads=threads, model=model
                )
                return score_run(run_dir, objective, seen, settings, seconds)

            runs[name] = run_result(results_dir, name, compute)
            print(name, runs[name], flush=True)
    groups = {
        f"{data} · {objective}": [run_name(data, objective, s) for s in settings["seeds"]]
        for data, objective in setting_list
    }
    summary = summarize(runs, groups, METRICS)
    rows = [
        [*group.split(" · "), *(percent(summary[group].get(m)) for m in METRICS)]
        for group in groups
    ]
    results = {
        "settings": {
            "variant": variant,
            "model": model or {"name": "unicl-tiny"},
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "lr": budget.lr,
            "seeds": list(settings["seeds"]),
            "held_out_classes": list(HELD_OUT),
            "test": settings["test"],
            "probe_train": settings["probe_train"],
        },
        "runs": runs,
        "summary": summary,
    }
    write_results(results_dir, results, markdown_table(HEADER, rows))


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"table5-{args.variant}"
    run_table(out, args.results or out, args.variant, settings, SETTINGS, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
