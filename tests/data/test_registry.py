"""Source kinds are a registry: a new data format is one reader registered in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from unicl.data import Modality, UnifiedStream, open_source, parse_source, source_kinds
from unicl.data.readers import register_reader, unregister_reader
from unicl.data.source import IndexedSource, RawSample
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID


class CaptionListSource(IndexedSource):
    """A toy format: a `.captions.json` list of `[image path, caption]` pairs."""

    kind = "captions-json"
    modality = Modality.IMAGE_TEXT

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.class_names = []
        self.pairs = json.loads(Path(spec.location).read_text(encoding="utf-8"))

    def __len__(self) -> int:
        return len(self.pairs)

    def raw(self, index: int) -> RawSample:
        path, caption = self.pairs[index]
        return RawSample(path, Path(path), caption, CAPTION_CLASS_ID)


@pytest.fixture
def toy_format():
    register_reader(
        "captions-json", CaptionListSource, lambda location: location.endswith(".captions.json")
    )
    yield
    unregister_reader("captions-json")


def test_a_registered_format_is_detected_opened_and_streamed(toy_format, tmp_path):
    pairs = []
    for i, colour in enumerate(("red", "green", "blue", "white")):
        Image.new("RGB", (12, 12), colour).save(tmp_path / f"{i}.png")
        pairs.append([str(tmp_path / f"{i}.png"), f"a {colour} tile"])
    listing = tmp_path / "tiles.captions.json"
    listing.write_text(json.dumps(pairs))

    assert "captions-json" in source_kinds()
    assert parse_source(f"captions-json:{listing}#x").kind == "captions-json"
    source = open_source(str(listing))
    assert isinstance(source, CaptionListSource) and len(source) == 4
    batch = next(iter(UnifiedStream([str(listing)], batch_size=4, image_size=8)))
    assert sorted(batch.texts) == sorted(caption for _, caption in pairs)
    assert (batch.class_ids == CAPTION_CLASS_ID).all()


def test_kinds_are_unique_and_unknown_ones_are_named():
    with pytest.raises(ValueError, match="registered already"):
        register_reader("folder", CaptionListSource, lambda location: False)
    with pytest.raises(UserInputError, match="source kind 'bogus' is unknown"):
        parse_source({"location": "x", "kind": "bogus"})
    assert source_kinds()[-1] == "folder"  # the fallback is tried last
