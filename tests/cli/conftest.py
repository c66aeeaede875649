"""Fixtures of the CLIP import and export tests: a tiny CLIP vocabulary and random
`transformers` CLIP models saved as Hugging Face directories; running a command as a user does."""

from __future__ import annotations

import json

import pytest

from unicl.cli.main import main


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    from tests.models.clip_reference import write_clip_vocabulary

    directory = tmp_path_factory.mktemp("vocabulary")
    write_clip_vocabulary(directory)
    return directory


@pytest.fixture(scope="module", params=[("quick_gelu", False), ("gelu", True)], ids=["new", "old"])
def reference(request, vocabulary, tmp_path_factory):
    """(transformers model, its saved directory): QuickGELU with a current config, and GELU with
    an old one (`eos_token_id == 2`, pooled at the largest id)."""
    from tests.models.clip_reference import save_hf_clip, tiny_clip

    act, legacy_eos = request.param
    model = tiny_clip(json.loads((vocabulary / "vocab.json").read_text()), act, legacy_eos)
    return model, save_hf_clip(model, vocabulary, tmp_path_factory.mktemp("hf") / "clip")


def run_command(capsys, *argv) -> str:
    """Run `unicl ARGV`; the one-line error when it fails, else ''."""
    capsys.readouterr()  # drop what building the references printed
    code = main(list(map(str, argv)))
    captured = capsys.readouterr()
    if code == 0:
        return ""
    assert code == 2 and captured.err.count("\n") == 1, captured.err
    return captured.err
