"""Process-group facts on one process (torch.distributed not initialised): rank 0 of 1, and every
collective is the identity. The same functions across 2 gloo processes are exercised by
tests/objective/test_loss_across_processes.py and tests/train/test_distributed.py."""

import pytest
import torch

from unicl import process_group
from unicl.errors import UserInputError


def test_one_process_is_rank_0_of_1_and_spans_nothing():
    assert process_group.rank() == 0
    assert process_group.world_size() == 1
    assert not process_group.spans_processes()


@pytest.mark.parametrize("value", [True, False])
def test_flags_agree_with_themselves(value):
    flag = torch.tensor(value)
    assert process_group.true_on_all_ranks(flag) is value
    assert process_group.flags_on_any_rank([flag, not value], torch.device("cpu")) == [
        value,
        not value,
    ]
    assert bool(flag) is value  # not modified


def test_sum_over_ranks_is_a_detached_copy():
    tensor = torch.tensor([1.0, 2.0], requires_grad=True)
    total = process_group.sum_over_ranks(tensor)
    assert torch.equal(total, tensor.detach()) and not total.requires_grad
    total += 1
    assert tensor.tolist() == [1.0, 2.0]


def test_gathers_on_one_process_return_their_input():
    item = {"position": 3, "state": torch.arange(2)}
    assert process_group.gather_objects(item) == [item]
    rows = torch.arange(6).reshape(3, 2)
    assert process_group.gather_sizes(3, torch.device("cpu")) == [3]
    assert process_group.gather_rows(rows) is rows


def test_device_resolution():
    assert process_group.resolve_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda", 1) if torch.cuda.is_available() else torch.device("cpu")
    assert process_group.resolve_device("auto", local_rank=1) == expected
    with pytest.raises(
        UserInputError, match=r"^run\.device is 'tpu'; use auto, cpu, cuda or cuda:N$"
    ):
        process_group.resolve_device("tpu", setting="run.device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_names_the_setting():
    with pytest.raises(UserInputError, match=r"run\.device is 'cuda' but no CUDA device"):
        process_group.resolve_device("cuda", setting="run.device")
    count = torch.cuda.device_count()
    with pytest.raises(UserInputError, match=rf"'cuda:{count}' but {count} CUDA devices"):
        process_group.resolve_device(f"cuda:{count}", setting="--device")
