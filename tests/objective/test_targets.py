"""target_labels (TargetM): which samples of a batch are positives of each other."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from unicl import target_labels

captions = st.sampled_from(["a dog on grass", "a red car", "two cats", "A dog on grass", "", "🍎"])
samples = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 20), st.just("a photo of a thing.")),
        st.tuples(st.just(-1), captions),
    ),
    min_size=1,
    max_size=40,
)


def split(batch):
    return torch.tensor([class_id for class_id, _ in batch]), [text for _, text in batch]


@given(samples)
def test_two_samples_share_a_label_exactly_when_same_class_or_same_caption(batch):
    class_ids, texts = split(batch)
    labels = target_labels(class_ids, texts)
    for i, (class_i, text_i) in enumerate(batch):
        for j, (class_j, text_j) in enumerate(batch):
            same = class_i == class_j and (class_i >= 0 or text_i == text_j)
            assert (labels[i] == labels[j]).item() == same


@given(samples)
def test_class_samples_keep_their_class_and_captions_never_collide_with_classes(batch):
    class_ids, texts = split(batch)
    labels = target_labels(class_ids, texts)
    is_class = class_ids >= 0
    assert torch.equal(labels[is_class], class_ids[is_class])
    assert (labels[~is_class] < 0).all()


@given(samples, st.randoms())
def test_a_caption_gets_the_same_label_in_any_batch_and_order(batch, random):
    """What lets every rank label its captions without communicating."""
    shuffled = list(batch)
    random.shuffle(shuffled)
    first = dict(zip(split(batch)[1], target_labels(*split(batch)).tolist(), strict=True))
    second = dict(zip(split(shuffled)[1], target_labels(*split(shuffled)).tolist(), strict=True))
    for class_id, text in batch:
        if class_id < 0:
            assert first[text] == second[text]


@given(samples)
def test_unique_captions_gives_every_caption_its_own_label(batch):
    class_ids, texts = split(batch)
    labels = target_labels(class_ids, texts, unique_captions=True, rank=0)
    caption_labels = labels[class_ids < 0]
    assert len(set(caption_labels.tolist())) == len(caption_labels)
    other_rank = target_labels(class_ids, texts, unique_captions=True, rank=1)[class_ids < 0]
    assert not set(caption_labels.tolist()) & set(other_rank.tolist())


def test_unique_captions_read_the_rank_from_the_group():
    class_ids, texts = torch.tensor([-1, 2, -1]), ["a", "b", "a"]
    from_group = target_labels(class_ids, texts, unique_captions=True, group=None)
    assert torch.equal(from_group, target_labels(class_ids, texts, unique_captions=True, rank=0))


def test_output_is_int64_on_the_input_device():
    labels = target_labels(torch.tensor([3, -1], dtype=torch.int32), ["x", "y"])
    assert labels.dtype == torch.long
    assert labels[0] == 3


@pytest.mark.parametrize(
    ("class_ids", "texts", "message"),
    [
        (torch.tensor([0, 1]), ["a"], "texts has 1 entries"),
        (torch.tensor([0, -2]), ["a", "b"], ">= 0 or -1"),
        (torch.tensor([0.0, 1.0]), ["a", "b"], "integer"),
        (torch.tensor([-1]), [None], "must be a str"),
    ],
)
def test_bad_input_is_an_error(class_ids, texts, message):
    with pytest.raises(ValueError, match=message):
        target_labels(class_ids, texts)
