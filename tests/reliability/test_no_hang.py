"""Data with no usable sample stops training at once with the bad-data error, never hangs."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.reliability.conftest import run_unicl
from unicl.data import UnifiedStream
from unicl.errors import UserInputError


@pytest.fixture
def empty_captions(tmp_path):
    """A CSV of real images whose captions are all empty."""
    from PIL import Image

    for i in range(40):
        Image.new("RGB", (16, 16), (i, 2 * i, 3 * i)).save(tmp_path / f"{i}.png")
    manifest = tmp_path / "captions.csv"
    manifest.write_text("image,caption\n" + "".join(f"{i}.png, \n" for i in range(40)))
    return manifest


@pytest.fixture
def zero_byte_images(tmp_path):
    """An ImageFolder of two classes whose images are all empty files."""
    for name in ("cat", "dog"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(30):
            (tmp_path / "folder" / name / f"{i}.jpg").write_bytes(b"")
    return tmp_path / "folder"


@pytest.mark.parametrize("data", ["empty_captions", "zero_byte_images"])
def test_train_stops_with_the_bad_data_error(request, tmp_path, data):
    source = request.getfixturevalue(data)
    config = {
        "model": {"name": "unicl-tiny"},
        "data": {"sources": [str(source)], "batch_size": 8},
        "schedule": {"steps": 5, "warmup_steps": 1},
        "run": {"output_dir": str(tmp_path / "run"), "device": "cpu", "threads": 1},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    outcome = run_unicl("train", path)
    assert outcome.status == 2
    error = outcome.stderr.splitlines()[-1]  # after the progress bar's lines
    assert error.startswith("unicl: error: ")
    assert "samples" in error and ("empty_caption" in error or "unreadable" in error)
    assert f"(e.g. {source.parent if source.is_file() else source}" in error  # names examples
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("num_workers", [0, 1])
@pytest.mark.parametrize("max_bad_fraction", [0.01, 1.0])
def test_the_stream_stops_in_its_workers(zero_byte_images, num_workers, max_bad_fraction):
    stream = UnifiedStream(
        [str(zero_byte_images)],
        batch_size=4,
        image_size=16,
        num_workers=num_workers,
        max_bad_fraction=max_bad_fraction,
    )
    with pytest.raises(UserInputError, match=r"bad|could be used") as raised:
        next(iter(stream))
    assert "\n" not in str(raised.value) and "zero_byte" not in str(raised.value).lower()
