"""Damaged or unusual data gives a one-line error or a correct result, never a traceback."""

from __future__ import annotations

import json

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
