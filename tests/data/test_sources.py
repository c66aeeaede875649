"""Every source kind reads real Fashion-MNIST / emoji files into (image, text, class) samples."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.data.data_corpus import (
    CLASSES,
    EMOJI_TEST,
    EMOJI_TRAIN,
    FASHION,
    emoji_pairs,
    fashion_arrays,
    write_caption_manifest,
    write_image_folder,
    write_label_shards,
)
from unicl.data import Modality, open_source, parse_source
from unicl.errors import UserInputError


def test_idx_directory_reads_the_demo_fashion_mnist_with_its_class_names():
    train, test = open_source(str(FASHION)), open_source(f"{FASHION}#t10k")
    assert (train.kind, train.modality, len(train), len(test)) == (
        "idx",
        Modality.IMAGE_LABEL,
        8000,
        2000,
    )
    assert train.class_names == list(CLASSES)
    image, text, class_id = next(test.samples())
    pixels, labels = fashion_arrays(1)
    assert image.mode == "RGB" and image.size == (28, 28) and text is None
    assert class_id == labels[0]
    assert np.array_equal(np.asarray(image)[..., 0], pixels[0])


def test_idx_images_file_and_the_debian_layout_are_the_same_kind():
    source = open_source(str(FASHION / "t10k-images-idx3-ubyte.gz"))
    assert source.kind == "idx" and len(source) == 2000


def test_npz_arrays_with_a_split(tmp_path):
    images, labels = fashion_arrays(30)
    np.savez(
        tmp_path / "fm.npz",
        x_train=images[:20],
        y_train=labels[:20],
        x_test=images[20:],
        y_test=labels[20:],
    )
    source = open_source({"location": f"{tmp_path}/fm.npz#test", "classes": "fashion-mnist"})
    assert source.kind == "npz" and len(source) == 10
    assert [c for _, _, c in source.samples()] == labels[20:].tolist()
    assert source.class_names[labels[20]] == CLASSES[labels[20]]


def test_image_folder_takes_classes_from_sub_folders(image_folder):
    source = open_source(str(image_folder))
    assert source.kind == "folder" and len(source) == 60
    assert source.class_names == sorted({CLASSES[label] for label in fashion_arrays(60)[1]})
    for image, _, class_id in source.samples():
        assert image.size == (28, 28)
        assert 0 <= class_id < len(source.class_names)


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_caption_manifests_pair_each_image_with_its_caption(tmp_path, kind):
    manifest = write_caption_manifest(tmp_path, 12, kind)
    source = open_source(str(manifest))
    assert (source.kind, source.modality, len(source)) == (kind, Modality.IMAGE_TEXT, 12)
    captions = [text for _, text, class_id in source.samples() if class_id == -1]
    assert captions == [caption for _, _, caption in emoji_pairs(12)]


def test_class_manifest_with_a_forced_kind(tmp_path):
    folder = write_image_folder(tmp_path / "fm", 20)
    rows = [f"{p.relative_to(tmp_path)}\t{p.parent.name}" for p in sorted(folder.rglob("*.png"))]
    (tmp_path / "list.txt").write_text("path\tcategory\n" + "\n".join(rows) + "\n")
    source = open_source(f"tsv:{tmp_path}/list.txt")
    assert (source.kind, source.modality, len(source)) == ("tsv", Modality.IMAGE_LABEL, 20)
    assert source.class_names == sorted({p.parent.name for p in folder.rglob("*.png")})


def test_webdataset_caption_shards_expand_braces():
    source = open_source(EMOJI_TRAIN)
    assert (source.kind, source.modality, len(source)) == ("shards", Modality.IMAGE_TEXT, 1000)
    assert source.shard_sizes == [250, 250, 250, 250]
    image, text, class_id = next(open_source(EMOJI_TEST).samples())
    assert image.mode == "RGB" and image.size == (64, 64)
    assert class_id == -1 and text == emoji_pairs(1)[0][2]


def test_webdataset_class_shards(tmp_path):
    pattern = write_label_shards(tmp_path / "shards", 25, per_shard=10)
    source = open_source({"location": pattern, "classes": "fashion-mnist"})
    assert (source.modality, source.shard_sizes) == (Modality.IMAGE_LABEL, [10, 10, 5])
    assert [c for _, _, c in source.samples()] == fashion_arrays(25)[1].tolist()


@pytest.mark.parametrize(
    ("text", "message"),
    [("/no/such/dir", "does not exist"), ("weird:thing", "does not exist"), ("", "empty source")],
)
def test_bad_source_strings_raise_user_errors_naming_them(text, message):
    with pytest.raises(UserInputError, match=message):
        open_source(text)


def test_forced_kind_prefix_and_split_suffix_parse():
    spec = parse_source("shards:/data/x.tar#valid")
    assert (spec.kind, spec.location, spec.split) == ("shards", "/data/x.tar", "valid")
    with pytest.raises(UserInputError, match="kind 'bogus'"):
        parse_source({"location": "x", "kind": "bogus"})


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("data/demo/fashion-mnist#t10k", "fashion-mnist-t10k"),
        ("shards:/d/train-{000000..000009}.tar", "train-000000..000009"),
        ("csv:/data/my captions.csv/", "my-captions.csv"),
        ("/", "data"),
    ],
)
def test_a_source_is_named_after_its_last_path_component_and_split(source, name):
    assert parse_source(source).name == name


def test_source_options_in_the_string_set_spec_fields():
    spec = parse_source("csv:data/photos.csv?text_column=desc&weight=0.5&templates=imagenet#a")
    assert (spec.kind, spec.location, spec.split) == ("csv", "data/photos.csv", "a")
    assert (spec.text_column, spec.weight, spec.templates) == ("desc", 0.5, "imagenet")
    with pytest.raises(UserInputError, match=r"source option 'colour' in 'x\.csv' is unknown"):
        parse_source("x.csv?colour=red")
    with pytest.raises(UserInputError, match="not a number"):
        parse_source("x.csv?weight=heavy")


def test_take_and_per_class_choose_part_of_a_source_by_position():
    first = open_source("data/demo/fashion-mnist?per_class=0:24")
    rest = open_source("data/demo/fashion-mnist#train?per_class=24:")
    assert len(first) == 240 and len(first) + len(rest) == 8000
    assert Counter(first.raw(i).class_id for i in range(len(first))) == dict.fromkeys(range(10), 24)
    assert {first.raw(i).key for i in range(240)}.isdisjoint(rest.raw(i).key for i in range(500))
    window = open_source("data/demo/fashion-mnist#t10k?take=100:200")
    whole = open_source("data/demo/fashion-mnist#t10k")
    assert [window.raw(i).key for i in range(100)] == [whole.raw(i).key for i in range(100, 200)]
    assert parse_source("x.csv?per_class=0:240").name == "x.csv-per_class-0-240"
    with pytest.raises(UserInputError, match="must be START:STOP"):
        open_source("data/demo/fashion-mnist?take=ten")
    with pytest.raises(UserInputError, match="need a source read by position"):
        open_source("data/demo/emoji/test-000000.tar?take=0:10")
