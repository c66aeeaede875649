"""`inspect_source`: what a source holds, and a contact sheet that shows all of it."""

from __future__ import annotations

from unicl.data import inspection, open_source


def test_the_contact_sheet_shows_every_class_in_turn(image_folder, tmp_path, monkeypatch):
    shown = {}
    monkeypatch.setattr(
        inspection, "write_contact_sheet", lambda examples, path: shown.update(examples=examples)
    )
    classes = open_source(str(image_folder)).class_names
    report = inspection.inspect_source(
        str(image_folder), sheet=tmp_path / "s.png", shown=len(classes)
    )
    assert [caption for _, caption in shown["examples"]] == classes
    assert report["samples"] == 60 and report["classes"] == classes
