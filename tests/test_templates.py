"""Prompt templates: the named sets and template files."""

import pytest

from unicl.errors import UserInputError
from unicl.templates import TEMPLATE_SETS, fill_template, get_templates


def test_named_sets_are_distinct_well_formed_templates():
    assert len(get_templates("imagenet")) == 80
    assert 3 <= len(get_templates("default")) <= 10
    for templates in TEMPLATE_SETS.values():
        assert len(set(templates)) == len(templates)
        assert all(t.count("{}") == 1 and "{}" in t.format("{}") for t in templates)


def test_a_file_gives_one_template_per_line_skipping_blanks_and_comments(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# garments\nitap of a {}.\n\n  a worn {}  \n")
    assert get_templates(path) == ("itap of a {}.", "a worn {}")


def test_bad_template_files_name_the_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a photo of a {}.\na photo\n")
    with pytest.raises(UserInputError, match=r"prompts\.txt:2"):
        get_templates(path)
    path.write_text("# nothing\n")
    with pytest.raises(UserInputError, match="holds no templates"):
        get_templates(path)
    with pytest.raises(UserInputError, match="neither a named set"):
        get_templates("clip-templates")


def test_filling_keeps_braces_of_the_class_name():
    assert fill_template("a photo of a {}.", "set {a, b}") == "a photo of a set {a, b}."
