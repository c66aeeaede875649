"""A disk that fills up while a command writes (a file-size limit: writes past it fail with EFBIG,
as a full disk fails with ENOSPC) ends in one line naming the output, with nothing half-written."""

from __future__ import annotations

from tests.reliability.conftest import run_unicl


def test_shards_on_a_full_disk(labelled, tmp_path):
    out = tmp_path / "shards"
    outcome = run_unicl("data", "shard", labelled, "--out", out, max_file_bytes=2_000)
    assert outcome.status == 2
    assert f"cannot write {out}: File too large" in outcome.error_line
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin


def test_a_model_written_on_a_full_disk(model_dir, tmp_path):
    out = tmp_path / "mixed"
    outcome = run_unicl("wise-ft", model_dir, model_dir, "--out", out, max_file_bytes=1_000_000)
    assert outcome.status == 2
    assert f"cannot write {out / 'model.safetensors'}: " in outcome.error_line
    assert "File too large" in outcome.error_line
    assert not (out / "model.safetensors").exists()
    assert not list(out.glob(".*.tmp"))
