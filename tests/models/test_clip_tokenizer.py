"""CLIP's tokenizer built with `tokenizers` gives transformers' CLIP tokenizer's ids."""

import pytest
import tokenizers

from tests.models.clip_reference import CONTEXT, TEXTS, hf_ids, hf_tokenizer, write_clip_vocabulary
from unicl.errors import UserInputError
from unicl.models import Tokenizer
from unicl.models.convert.clip import read_clip_tokenizer
from unicl.models.tokenizer import END, byte_symbols, clip_vocabulary, use_clip_padding

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocabulary")
    return directory, write_clip_vocabulary(directory)


def test_byte_symbols_are_in_gpt2_order():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    assert byte_symbols() == list(bytes_to_unicode().values())


def test_the_vocabulary_follows_from_the_merges_as_openai_builds_it(vocabulary):
    directory, vocab = vocabulary
    merges = [
        tuple(line.split())
        for line in (directory / "merges.txt").read_text().split("\n")[1:]
        if line
    ]
    assert clip_vocabulary(merges) == vocab


@pytest.mark.parametrize("source", ["vocab.json + merges.txt", "bpe.txt.gz", "tokenizer.json"])
@pytest.mark.parametrize("context", [CONTEXT, 64])
def test_ids_padding_and_truncation_equal_transformers(vocabulary, tmp_path, source, context):
    directory, _ = vocabulary
    reference = hf_tokenizer(directory)
    if source == "bpe.txt.gz":
        path = directory / "bpe.txt.gz"
    elif source == "tokenizer.json":
        reference.save_pretrained(str(tmp_path))
        path = tmp_path / "tokenizer.json"
    else:
        path = directory
    ours = Tokenizer(read_clip_tokenizer(path), context)
    expected = reference(
        TEXTS, padding="max_length", max_length=context, truncation=True, return_tensors="pt"
    ).input_ids
    assert ours(TEXTS).tolist() == expected.tolist()
    assert ours.pad_id == reference.convert_tokens_to_ids(END) == reference.pad_token_id


def test_texts_are_lower_cased_whitespace_cleaned_and_wrapped(vocabulary):
    directory, vocab = vocabulary
    ours = Tokenizer(read_clip_tokenizer(directory), CONTEXT)
    ids = ours(["A  PHOTO\n of\ta CAT."])[0].tolist()
    assert ids == ours(["a photo of a cat."])[0].tolist()
    end = ids.index(vocab[END])
    assert ids[0] == vocab["<|startoftext|>"] and ids[end:] == [vocab[END]] * (CONTEXT - end)
    assert ours.decode(ids).strip() == hf_tokenizer(directory).decode(ids, skip_special_tokens=True)
    assert (
        hf_ids(hf_tokenizer(directory), ["x" * 100])[0, -1]
        == vocab[END]
        == ours(["x" * 100])[0, -1]
    )


def test_tokenizers_that_are_not_clips_are_refused(tmp_path):
    with pytest.raises(UserInputError, match=r"has no <\|endoftext\|> token"):
        use_clip_padding(tokenizers.Tokenizer(tokenizers.models.BPE()))
    with pytest.raises(
        UserInputError, match=r"needs tokenizer\.json, or vocab\.json and merges\.txt"
    ):
        read_clip_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(UserInputError, match="merge 1 is not two symbols"):
        read_clip_tokenizer(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(UserInputError, match="lacks the special tokens"):
        read_clip_tokenizer(tmp_path)
