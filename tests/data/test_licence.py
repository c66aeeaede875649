"""A source's licence is read from a licence file in its folder, where the data states it."""

from unicl.data.licence import data_licence


def test_the_demo_data_states_its_licences():
    assert data_licence("data/demo/fashion-mnist").startswith(
        "MIT, Copyright (c) 2017 Zalando SE (Fashion-MNIST"
    )
    assert data_licence("data/demo/fashion-mnist").endswith("(data/demo/fashion-mnist/LICENSE)")
    emoji = data_licence("data/demo/emoji/train-{000000..000003}.tar")
    assert emoji.startswith("CC-BY 4.0 (Twemoji graphics")


def test_a_source_without_a_licence_file_has_none(tmp_path):
    (tmp_path / "images").mkdir()
    assert data_licence(str(tmp_path / "images")) is None
    assert data_licence("https://example.com/shards-{000..009}.tar") is None
    (tmp_path / "images" / "LICENCE.md").write_text("\n\nCC0 1.0\n\nfull text\n")
    assert (
        data_licence(str(tmp_path / "images")) == f"CC0 1.0 ({tmp_path / 'images' / 'LICENCE.md'})"
    )
    assert data_licence(str(tmp_path / "images" / "manifest.csv")).startswith("CC0 1.0 (")
    assert data_licence(str(tmp_path / "manifest.csv")) is None
