"""No command writes over a file it was not asked to replace, or into a model's own files."""

from __future__ import annotations

import json

import numpy as np

from tests.reliability.conftest import run_unicl, snapshot


def test_eval_never_writes_into_the_model_directory(model_dir, labelled):
    before = snapshot(model_dir)
    for target, overwrite in (
        ("model.safetensors", ["--overwrite"]),
        ("config.json", []),
        ("new.json", []),
    ):
        zeroshot = ["eval", "zeroshot", model_dir, "--data", labelled, "--out", model_dir / target]
        outcome = run_unicl(*zeroshot, *overwrite)
        assert outcome.status == 2, target
        assert "inside the model directory" in outcome.error_line
    assert snapshot(model_dir) == before


def test_eval_refuses_an_existing_result_unless_overwrite(model_dir, labelled, tmp_path):
    out = tmp_path / "mine.json"
    out.write_text("the user's own file\n")
    refused = run_unicl("eval", "zeroshot", model_dir, "--data", labelled, "--out", out)
    assert refused.status == 2 and "--overwrite" in refused.error_line
    assert out.read_text() == "the user's own file\n"
    assert not out.with_suffix(".png").exists()

    replaced = run_unicl(
        "eval", "zeroshot", model_dir, "--data", labelled, "--out", out, "--overwrite"
    )
    assert replaced.status == 0, replaced.stderr
    assert json.loads(out.read_text())["num_samples"] == 6
    assert out.with_suffix(".png").stat().st_size > 0


def test_eval_refuses_its_own_earlier_result_at_the_default_path(model_dir, labelled, tmp_path):
    probe = ["eval", "linear-probe", model_dir, "--train", labelled, "--test", labelled]
    first = run_unicl(*probe)
    assert first.status == 0, first.stderr
    result = model_dir / "evaluation" / f"linear-probe-{labelled.name}.json"
    before = snapshot(result)
    second = run_unicl(*probe)
    assert second.status == 2 and str(result) in second.error_line
    assert snapshot(result) == before


def test_embed_refuses_existing_outputs_a_directory_and_the_model(model_dir, labelled, tmp_path):
    npy = tmp_path / "emb.npy"
    npy.write_bytes(b"not mine to lose")
    index = tmp_path / "other.index.jsonl"
    index.write_text("{}\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    before = snapshot(tmp_path, model_dir)
    for out, message in (
        (npy, "already exists"),
        (tmp_path / "other", "already exists"),  # its index file exists
        (folder, "is a directory"),
        (model_dir / "model.npy", "inside the model directory"),
    ):
        outcome = run_unicl("embed", model_dir, "--data", labelled, "--out", out)
        assert outcome.status == 2 and message in outcome.error_line, out
    assert snapshot(tmp_path, model_dir) == before
    assert not (tmp_path / "folder.npy").exists()

    replaced = run_unicl("embed", model_dir, "--data", labelled, "--out", npy, "--overwrite")
    assert replaced.status == 0, replaced.stderr
    assert np.load(npy).shape == (6, 128)


def test_tokenizer_and_contact_sheet_refuse_to_replace_a_file(labelled, tmp_path):
    text = tmp_path / "captions.txt"
    text.write_text("a black square\na white square\n" * 20)
    (tmp_path / "tok").mkdir()
    tokenizer = tmp_path / "tok" / "tokenizer.json"
    tokenizer.write_text("{}")
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"a picture")
    before = snapshot(tmp_path)
    trained = run_unicl(
        "tokenizer", "train", text, "--vocab-size", "300", "--out", tmp_path / "tok"
    )
    inspected = run_unicl("data", "inspect", labelled, "--sheet", sheet)
    for outcome in (trained, inspected):
        assert outcome.status == 2 and "--overwrite" in outcome.error_line
    assert snapshot(tmp_path) == before
