"""`unicl data inspect|prepare|shard` on the demo data."""

from __future__ import annotations

import json

from tests.data.data_corpus import EMOJI_TEST, FASHION, write_caption_manifest
from unicl.cli.main import main


def test_inspect_prints_json_and_writes_a_contact_sheet(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["data", "inspect", EMOJI_TEST, "--json", "--sheet", str(sheet)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["modality"], report["samples"], report["unreadable"]) == (
        "shards",
        "image-text",
        200,
        0,
    )
    assert sheet.read_bytes().startswith(b"\x89PNG")


def test_inspect_reports_classes_in_text(capsys):
    assert main(["data", "inspect", f"{FASHION}#t10k", "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "idx, image-label, 2000 samples" in out and "ankle boot" in out


def test_shard_then_inspect_the_shards(tmp_path, capsys):
    manifest = write_caption_manifest(tmp_path / "m", 12)
    assert (
        main(["data", "shard", str(manifest), "--out", str(tmp_path / "s"), "--per-shard", "5"])
        == 0
    )
    assert "12 samples in 3 shards" in capsys.readouterr().out
    assert main(["data", "inspect", str(tmp_path / "s" / "shard-{000000..000002}.tar")]) == 0
    assert "12 samples" in capsys.readouterr().out


def test_prepare_writes_folders_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "fm"
    assert (
        main(["data", "prepare", "fashion-mnist", "--out", str(out), "--from", str(FASHION)]) == 0
    )
    assert len(list((out / "test" / "ankle boot").iterdir())) > 0
    assert (
        main(["data", "prepare", "fashion-mnist", "--out", str(out), "--from", str(FASHION)]) == 2
    )
    assert "already exists" in capsys.readouterr().err


def test_a_missing_source_is_one_line_of_error(capsys):
    assert main(["data", "inspect", "/no/such/place"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
