"""Damaged or unusual data gives a one-line error or a correct result, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.reliability.conftest import run_unicl


def test_a_manifest_that_is_not_utf8_is_named(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    manifest = tmp_path / "latin1.csv"
    manifest.write_bytes("image,caption\na.png,caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    outcome = run_unicl("data", "inspect", manifest)
    assert outcome.status == 2
    assert f"{manifest} is not UTF-8 text" in outcome.error_line


def test_npz_class_names_come_from_a_classes_array(tmp_path):
    archive = tmp_path / "digits.npz"
    rng = np.random.default_rng(0)
    np.savez(
        archive,
        images=rng.integers(0, 255, (6, 8, 8), dtype=np.uint8),
        labels=np.array([0, 1, 2, 0, 1, 2]),
        classes=np.array(["zero", "one", "two"]),
    )
    outcome = run_unicl("data", "inspect", archive, "--json")
    assert outcome.status == 0, outcome.stderr
    assert json.loads(outcome.stdout)["classes"] == ["zero", "one", "two"]


def test_broken_and_looping_links_in_a_folder_are_counted_as_bad(labelled, tmp_path):
    folder = tmp_path / "folder"
    (folder / "black").mkdir(parents=True)
    for path in (labelled / "black").iterdir():
        (folder / "black" / path.name).write_bytes(path.read_bytes())
    (folder / "black" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "black" / "loop.png").symlink_to(folder / "black" / "loop.png")
    outcome = run_unicl("data", "inspect", folder, "--json")
    assert outcome.status == 0, outcome.stderr
    report = json.loads(outcome.stdout)
    assert (report["samples"], report["unreadable"]) == (5, 2)


def test_manifest_columns_can_be_named_on_the_command_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    manifest = tmp_path / "photos.csv"
    manifest.write_text("file_name,desc\na.png,a black square\n")
    refused = run_unicl("data", "inspect", manifest)
    assert refused.status == 2 and f"'{manifest}?text_column=NAME'" in refused.error_line
    named = run_unicl("data", "inspect", f"{manifest}?image_column=file_name&text_column=desc")
    assert named.status == 0, named.stderr
    assert "image-text, 1 samples" in named.stdout


def test_a_cut_short_tar_without_stats_is_counted_not_just_warned(tmp_path):
    import webdataset as wds

    shard = tmp_path / "part-000000.tar"
    rng = np.random.default_rng(0)
    with wds.TarWriter(str(shard)) as sink:
        for i in range(8):
            image = tmp_path / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
            sink.write({"__key__": f"k{i}", "png": image.read_bytes(), "txt": f"tile {i}"})
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2 + 700])  # ends inside a member
    outcome = run_unicl("data", "inspect", shard, "--json")
    assert outcome.status == 0, outcome.stderr
    report = json.loads(outcome.stdout)
    assert report["bad"].get("truncated", 0) >= 1
    assert "ReadError" not in outcome.stderr


def test_an_npz_of_images_and_captions_is_image_text(tmp_path):
    archive = tmp_path / "tiles.npz"
    rng = np.random.default_rng(1)
    captions = np.array(["a red tile", "a blue tile", "a green tile"])
    np.savez(archive, images=rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8), captions=captions)
    outcome = run_unicl("data", "inspect", archive, "--json")
    assert outcome.status == 0, outcome.stderr
    report = json.loads(outcome.stdout)
    assert (report["modality"], report["samples"], report["classes"]) == ("image-text", 3, [])


class WritesMarker:
    """Unpickling this would call `exec`, which writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _npz(path, **arrays):
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def test_damaged_and_hostile_arrays_are_one_line(tmp_path):
    images = np.zeros((4, 8, 8), np.uint8)
    marker = tmp_path / "code-ran"
    demo_labels = Path("data/demo/fashion-mnist/t10k-labels-idx1-ubyte.gz").read_bytes()
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "t10k-images-idx3-ubyte.gz").write_bytes(
        Path("data/demo/fashion-mnist/t10k-images-idx3-ubyte.gz").read_bytes()[:50_000]
    )
    (idx / "t10k-labels-idx1-ubyte.gz").write_bytes(demo_labels)
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 not a zip" * 10)
    cases = {
        f"{idx}#t10k": "t10k-images-idx3-ubyte.gz is not a readable gzip file (Compressed file",
        str(tmp_path / "zip.npz"): "zip.npz is not a readable NPZ archive (File is not a zip",
        str(_npz(tmp_path / "pickle.npz", images=images, labels=np.array(
            [WritesMarker(marker)] * 4, dtype=object))): "Object arrays cannot be loaded",
        str(_npz(tmp_path / "empty.npz", images=images[:0], labels=np.zeros(0, int))):
            "empty.npz holds no images",
        str(_npz(tmp_path / "flat.npz", images=images, labels=np.zeros((4, 2), int))):
            "expected integer labels [N], got int64 (4, 2)",
    }  # fmt: skip
    for source, message in cases.items():
        outcome = run_unicl("data", "inspect", source)
        assert outcome.status == 2, source
        assert message in outcome.error_line
    assert not marker.exists()
