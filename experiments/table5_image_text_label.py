"""Table 5 analogue: does image-text data help image-label training, and the other way round?

Real data only: Fashion-MNIST (Debian's `dataset-fashion-mnist`) as the image-label data and
Twemoji images captioned with their Unicode names (npm `emoji-datasource-twitter`, shipped in
`data/demo/emoji/`) as the image-text data. Three UniCL runs with the same budget:

- `label`: Fashion-MNIST with 3 classes held out (`HELD_OUT`), 7 seen classes;
- `text`: the 1,000 training emoji with their captions;
- `label+text`: both, through the balanced sampler (half of every batch of each kind).

Scored on data held out of every run: zero-shot top-1 on the test images of the 7 seen classes
(7-way) and of the 3 held-out classes (3-way, chance 33%), and image<->text recall@1/5 on the 200
held-out emoji, whose captions no run has seen.

Run: `python experiments/table5_image_text_label.py --variant short|full [--out DIR]`.
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
    load_model,
    markdown_table,
    mean_and_spread,
    parse_arguments,
    percent,
    train_run,
    write_results,
    zeroshot_top1,
)

from unicl.data.arrays import read_idx
from unicl.data.classes import KNOWN_CLASS_NAMES
from unicl.evaluate import evaluate_retrieval

HELD_OUT = ("trouser", "sandal", "bag")
VARIANTS = {
    "short": {"budget": Budget(steps=80, batch_size=64), "seeds": (0, 1, 2)},
    "full": {"budget": Budget(steps=1500, batch_size=128), "seeds": (0, 1, 2)},
    # the pipeline in about a minute (tests).
    "tiny": {"budget": Budget(steps=2, batch_size=16), "seeds": (0,)},
}
SETTINGS = ("label", "text", "label+text")


def split_classes(out: Path) -> tuple[Path, Path]:
    """Write `seen.npz` (train and t10k images of the 7 seen classes) and `held-out.npz` (t10k
    images of the `HELD_OUT` classes), labels renumbered within each, with their class names."""
    names = KNOWN_CLASS_NAMES["fashion-mnist"]
    groups = {
        "seen": [i for i, name in enumerate(names) if name not in HELD_OUT],
        "held-out": [names.index(name) for name in HELD_OUT],
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, classes in groups.items():
        arrays = {"class_names": np.array([names[i] for i in classes])}
        for split in ("train", "t10k") if group == "seen" else ("t10k",):
            images = read_idx(Path(FASHION_MNIST) / f"{split}-images-idx3-ubyte.gz")
            labels = read_idx(Path(FASHION_MNIST) / f"{split}-labels-idx1-ubyte.gz")
            keep = np.isin(labels, classes)
            renumber = {original: new for new, original in enumerate(classes)}
            arrays[f"x_{split}"] = images[keep]
            arrays[f"y_{split}"] = np.array([renumber[int(v)] for v in labels[keep]], np.int64)
        path = out / f"{group}.npz"
        np.savez(path, **arrays)
        paths.append(path)
    return paths[0], paths[1]


def main() -> int:
    args, settings = parse_arguments(__doc__.splitlines()[0], VARIANTS)
    out = args.out or Path("runs/experiments") / f"table5-{args.variant}"
    budget = settings["budget"]
    seen, held_out = split_classes(out / "data")
    seen_train = {"location": str(seen), "split": "train"}
    sources = {
        "label": [seen_train],
        "text": [EMOJI_TRAIN],
        "label+text": [seen_train, EMOJI_TRAIN],
    }
    runs = {}
    for setting in SETTINGS:
        for seed in settings["seeds"]:
            name = f"{setting}-seed{seed}"
            model_dir, seconds = train_run(
                out / name.replace("+", "-"),
                sources[setting],
                "unicl",
                budget,
                seed,
                threads=args.threads,
            )
            model = load_model(model_dir)
            retrieval = evaluate_retrieval(model, EMOJI_TEST, ks=(1, 5), progress=False)
            runs[name] = {
                "zeroshot_seen_top1": zeroshot_top1(
                    model, {"location": str(seen), "split": "t10k"}
                ),
                "zeroshot_held_out_top1": zeroshot_top1(
                    model, {"location": str(held_out), "split": "t10k"}
                ),
                **{f"emoji_{k}": v for k, v in retrieval.items() if "@" in k},
                "train_seconds": seconds,
            }
            print(name, runs[name], flush=True)
    metrics = (
        "zeroshot_seen_top1",
        "zeroshot_held_out_top1",
        "emoji_image_to_text_R@1",
        "emoji_image_to_text_R@5",
        "emoji_text_to_image_R@1",
        "emoji_text_to_image_R@5",
    )
    summary = {
        setting: {
            metric: mean_and_spread([runs[f"{setting}-seed{s}"][metric] for s in settings["seeds"]])
            for metric in metrics
        }
        for setting in SETTINGS
    }
    header = [
        "training data",
        "FMNIST seen 7-way",
        "FMNIST held-out 3-way",
        "emoji I->T R@1",
        "R@5",
        "emoji T->I R@1",
        "R@5",
    ]
    rows = [[setting] + [percent(summary[setting][m]) for m in metrics] for setting in SETTINGS]
    results = {
        "settings": {
            "variant": args.variant,
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "lr": budget.lr,
            "seeds": list(settings["seeds"]),
            "held_out_classes": list(HELD_OUT),
        },
        "runs": runs,
        "summary": summary,
    }
    write_results(out, results, markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
