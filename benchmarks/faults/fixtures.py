"""The good inputs the fault cases start from, built once per results folder.

- `model`: an untrained `unicl-tiny` saved with `save_pretrained` (cases copy it before damaging it);
  `other_model`: the same with `embed_dim: 64` (a model that does not fit the first);
- `folder`: an ImageFolder of 2 classes x 4 PNG images; `captions`: a CSV of 6 captioned images;
- `train_config`: `configs/demo.yaml` made cheap (2 steps of batch 16, no data workers, no
  evaluation, absolute paths to the demo data), for cases that set `run.output_dir` themselves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
FASHION = DEMO / "fashion-mnist"
EMOJI_TRAIN = str(DEMO / "emoji" / "train-{000000..000003}.tar")
EMOJI_TEST = DEMO / "emoji" / "test-000000.tar"


@dataclass(frozen=True)
class Fixtures:
    model: Path
    other_model: Path
    folder: Path
    captions: Path
    image: Path
    train_config: Path

    def copy_model(self, folder: Path, name: str = "model") -> Path:
        """A copy of the saved model under `folder` that a case may damage."""
        return Path(shutil.copytree(self.model, folder / name))


def cheap_training(output_dir: str = "runs/fault") -> dict:
    """`configs/demo.yaml` with 2 steps of 16 samples, no workers and no evaluation."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["data"].update(sources=[str(FASHION), EMOJI_TRAIN], batch_size=16, num_workers=0)
    config["schedule"] = {"steps": 2, "warmup_steps": 1}
    config["evaluation"] = {"zeroshot": []}
    config["logging"] = {"every_steps": 1}
    config["run"]["output_dir"] = output_dir
    return config


def build_fixtures(root: Path) -> Fixtures:
    """Write the fixtures under `root` (once; later calls reuse them)."""
    fixtures = Fixtures(
        model=root / "model",
        other_model=root / "other-model",
        folder=root / "folder",
        captions=root / "captions" / "captions.csv",
        image=root / "folder" / "black" / "0.png",
        train_config=root / "train.yaml",
    )
    from unicl.models import create_model

    for path, overrides in ((fixtures.model, {}), (fixtures.other_model, {"embed_dim": 64})):
        if not path.is_dir():
            create_model("unicl-tiny", **overrides).save_pretrained(f"{path}.partial")
            Path(f"{path}.partial").rename(path)
    for name, value in (("black", 10), ("white", 240)):
        (fixtures.folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            colour = (value, value, max(0, value - 3 * i))
            Image.new("RGB", (24, 24), colour).save(fixtures.folder / name / f"{i}.png")
    fixtures.captions.parent.mkdir(exist_ok=True)
    rows = ["image,caption"]
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for i, (word, colour) in enumerate(list(colours.items()) * 2):
        Image.new("RGB", (24, 24), colour).save(fixtures.captions.parent / f"{i}.png")
        rows.append(f"{i}.png,a {word} square number {i}")
    fixtures.captions.write_text("\n".join(rows) + "\n")
    fixtures.train_config.write_text(yaml.safe_dump(cheap_training(), sort_keys=False))
    return fixtures
