"""Tokenizers: BPE training, tokenizer.json loading, specials, padding and truncation."""

import pytest
import tokenizers
import torch

from unicl.errors import UserInputError
from unicl.models import Tokenizer, train_bpe
from unicl.models.tokenizer import END, PAD, START, list_shipped_tokenizers

CAPTIONS = [
    "a photo of a red sneaker on a white floor.",
    "two dogs running on the beach at sunset.",
    "a close-up photo of a leather bag.",
    "a man wearing a grey coat and a wool hat.",
] * 20


@pytest.fixture
def trained(tmp_path):
    path = tmp_path / "tokenizer.json"
    train_bpe(CAPTIONS, vocab_size=320).save(str(path))
    return path


def test_trained_bpe_wraps_texts_in_start_and_end_tokens(trained):
    tokenizer = Tokenizer.from_file(trained, context_length=16)
    start, end = (tokenizer.backend.token_to_id(t) for t in (START, END))
    ids = tokenizer(["a photo of a red sneaker"])[0].tolist()
    length = ids.index(tokenizer.pad_id)
    assert ids[0] == start and ids[length - 1] == end
    assert ids[length:] == [tokenizer.pad_id] * (16 - length)
    assert tokenizer.decode(ids) == " a photo of a red sneaker"


def test_merges_learned_from_the_captions_shorten_them(trained):
    tokenizer = Tokenizer.from_file(trained, context_length=64)
    ids = tokenizer(["a photo of a leather bag"])[0]
    assert (ids != tokenizer.pad_id).sum() < len("a photo of a leather bag") // 2


def test_lowercases_and_handles_any_unicode_through_bytes(trained):
    tokenizer = Tokenizer.from_file(trained, context_length=64)
    assert torch.equal(tokenizer(["A PHOTO"]), tokenizer(["a photo"]))
    assert tokenizer.decode(tokenizer(["café 東京 🙂"])[0].tolist()) == " café 東京 🙂"


def test_truncation_keeps_the_end_token_last(trained):
    tokenizer = Tokenizer.from_file(trained, context_length=8)
    ids = tokenizer(["two dogs running on the beach at sunset " * 5, "a"])
    assert ids.shape == (2, 8)
    assert ids[0, -1] == tokenizer.backend.token_to_id(END)


def test_shipped_tokenizer_is_found_by_name():
    assert "bpe-4k" in list_shipped_tokenizers()
    tokenizer = Tokenizer.from_file("bpe-4k", context_length=32)
    assert tokenizer.vocab_size == 4096
    assert tokenizer.pad_id == tokenizer.backend.token_to_id(PAD)


def test_any_tokenizer_json_with_a_padding_token_loads(tmp_path):
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[PAD]": 0, "hi": 1}, "hi"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    backend.save(str(tmp_path / "tokenizer.json"))
    tokenizer = Tokenizer.from_file(tmp_path, context_length=4)
    assert tokenizer(["hi hi"]).tolist() == [[1, 1, 0, 0]]


def test_a_tokenizer_without_padding_token_is_refused(tmp_path):
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({"hi": 0}, "hi"))
    backend.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UserInputError, match="no padding token"):
        Tokenizer.from_file(tmp_path / "tokenizer.json", context_length=4)


def test_bad_paths_and_files_are_named(tmp_path):
    with pytest.raises(UserInputError, match="no-such-tokenizer"):
        Tokenizer.from_file("no-such-tokenizer", context_length=4)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserInputError, match=r"not a valid tokenizer\.json"):
        Tokenizer.from_file(tmp_path / "tokenizer.json", context_length=4)


def test_a_vocabulary_smaller_than_the_byte_alphabet_is_refused():
    with pytest.raises(UserInputError, match="vocab size 100"):
        train_bpe(CAPTIONS, vocab_size=100)
