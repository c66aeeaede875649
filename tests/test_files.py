"""Atomic writes: the target is the old complete file or the new one, never a partial one."""

import pytest

from unicl.files import atomic_path, write_text_atomic


def test_a_completed_write_replaces_the_target(tmp_path):
    target = tmp_path / "nested" / "result.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"good weights")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"good weights"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_the_temporary_name_keeps_the_suffix_writers_infer_formats_from(tmp_path):
    with atomic_path(tmp_path / "plot.png", ".png") as temporary:
        assert temporary.suffix == ".png"
        assert temporary.parent == tmp_path
        temporary.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"
