"""Forward and backward of one optimiser step, with gradient accumulation that keeps every sample
of the accumulated batch as a negative of every other.

With `k` micro-batches the batch is split into chunks `c_1..c_k`. First every chunk is encoded
without gradients and its features are cached. Then, for each chunk `j`, the chunk is encoded again
with gradients and the loss of the *whole* batch is computed from the cached features with chunk
`j`'s replaced by the live ones, and back-propagated. The loss `L(f_1, ..., f_k)` has the same
value at every micro-step, and

    sum_j dL/df_j * df_j/dtheta = dL/dtheta

so the summed micro-step gradients are the full-batch gradient (OpenCLIP's scheme). Tensors the
whole batch shares (the logit scale) carry gradients only in the last micro-step, so they too
receive exactly one full-batch gradient. Each chunk's recomputation replays the random-number
state of its cached pass, so dropout and drop-path draw the same masks in both passes.

Under DDP (FSDP) the first `k - 1` micro-steps keep their gradients local and the last one
all-reduces (reduce-scatters) them.
Whether the step's features and loss are finite is returned, not agreed here: the loop agrees on
it together with the stop flag in one collective per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from unicl.train.objective_registry import StepInputs, TrainingObjective


def are_finite(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A boolean scalar tensor on the tensors' device: no NaN or infinity in any of `tensors`
    (no host sync; the loop agrees on it across ranks once per step)."""
    finite = torch.ones((), dtype=torch.bool, device=tensors[0].device)
    for tensor in tensors:
        finite &= torch.isfinite(tensor.detach()).all()
    return finite


def split_inputs(inputs: StepInputs, parts: int) -> list[StepInputs]:
    """`parts` micro-batches of consecutive samples (the first ones one larger if uneven)."""
    pieces = {name: torch.tensor_split(value, parts) for name, value in inputs.items()}
    return [{name: pieces[name][i] for name in inputs} for i in range(parts)]


def forward_backward(
    module: nn.Module,
    objective: TrainingObjective,
    inputs: StepInputs,
    accumulation_steps: int,
    autocast: Callable[[], contextlib.AbstractContextManager],
    backward: Callable[[torch.Tensor], None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accumulate into `.grad` the gradient of `objective.loss` over the whole of `inputs`.

    `module` is the objective itself or its DDP wrapper (whose forward is the objective's);
    `backward` back-propagates a loss (e.g. through a gradient scaler). Returns this process's
    loss value (detached) and a boolean scalar tensor, `finite`, that is False when a feature or
    the loss is NaN or infinite on this process. Nothing here synchronises with the host or
    talks to other ranks beyond the objective's own collectives: every rank runs every backward
    (so DDP's all-reduce is never left waiting), and the caller agrees on `finite` across ranks
    and skips the update, whose gradients are then not usable, when it fails anywhere.
    """
    if accumulation_steps == 1:
        with autocast():
            features, shared = module(inputs)
            loss = objective.loss(features, shared, inputs)
        backward(loss)
        return loss.detach(), are_finite((*features, *shared, loss))

    chunks = split_inputs(inputs, accumulation_steps)
    states, cached = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(_rng_state(inputs))
            with autocast():
                cached.append(module(chunk)[0])
    after = _rng_state(inputs)
    last = accumulation_steps - 1
    for j, chunk in enumerate(chunks):
        _set_rng_state(states[j])
        with _local_gradients(module) if j < last else contextlib.nullcontext():
            with autocast():
                live, shared = module(chunk)
                features = tuple(
                    torch.cat([*parts[:j], live[n], *parts[j + 1 :]])
                    for n, parts in enumerate(zip(*cached, strict=True))
                )
                if j < last:
                    shared = tuple(s.detach() for s in shared)
                loss = objective.loss(features, shared, inputs)
            backward(loss)
    _set_rng_state(after)
    cached_features = tuple(t for parts in cached for t in parts)
    return loss.detach(), are_finite((*cached_features, *shared, loss))


@contextlib.contextmanager
def _local_gradients(module: nn.Module) -> Iterator[None]:
    """Backward passes inside accumulate their gradients without reducing them across processes
    (DDP's `no_sync`, FSDP2's `set_requires_gradient_sync(False)`); the next backward outside
    reduces everything accumulated. Nothing to defer on one process."""
    if hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    elif hasattr(module, "set_requires_gradient_sync"):
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    else:
        yield


def _rng_state(inputs: StepInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    device = next(iter(inputs.values())).device
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)
