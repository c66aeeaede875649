"""`run.sharding: fsdp`: the training objective's parameters, gradients and optimiser state sharded
over the ranks of the run's group with PyTorch's FSDP2 (`torch.distributed.fsdp.fully_shard`).

Every block of a tower (each element of an `nn.ModuleList`, e.g. a ViT's or a text transformer's
blocks, a Swin stage's blocks) is one unit, gathered just before it computes and freed after, then
every tower, then the whole objective (projections, logit scale, an objective's head). Each rank
keeps `1/W` of every parameter, gradient and AdamW moment, so towers `W` times too large for DDP's
full replicas fit. Gradients are reduce-scattered and averaged over the ranks, as DDP averages
them, so a step computes exactly DDP's update (and one process's on the global batch).

The parameters become `DTensor`s whose names are those of the unsharded model. Checkpoints hold
full (gathered) tensors, written by rank 0 as with DDP; the model that is evaluated and saved is an
unsharded copy with gathered weights. FSDP2 shards no scalar parameter (the logit scale): those
stay whole on every rank and their gradients are averaged with one all-reduce per step.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn

from unicl import process_group
from unicl.errors import UserInputError
from unicl.process_group import Group


class ShardedObjective:
    """What a sharded run keeps beside its sharded objective: the parameters FSDP2 cannot shard
    (scalars such as the logit scale), kept whole on every rank and averaged here like DDP averages
    them, and an unsharded copy of `objective.model` for evaluation and export."""

    def __init__(self, objective: nn.Module, device: torch.device, group: Group) -> None:
        """Shard `objective` in place: `fully_shard` on every block, then every tower, then the
        objective itself (which becomes an `FSDPModule`)."""
        if torch.torch_version.TorchVersion(torch.__version__) < "2.7":
            raise UserInputError(
                f"run.sharding: fsdp needs PyTorch >= 2.7 (FSDP2 with ignored parameters), not "
                f"{torch.__version__}; upgrade PyTorch or use run.sharding: ddp"
            )
        from torch.distributed.device_mesh import DeviceMesh
        from torch.distributed.fsdp import fully_shard

        self.group = group
        self.copy = copy.deepcopy(objective.model)
        self.replicated = [p for p in objective.parameters() if p.ndim == 0]
        ignored = set(self.replicated)
        mesh = DeviceMesh.from_group(group or dist.group.WORLD, device.type)
        units = [block for m in objective.modules() if isinstance(m, nn.ModuleList) for block in m]
        towers = [getattr(objective.model, f"{side}_encoder", None) for side in ("image", "text")]
        for unit in [*units, *(t for t in towers if isinstance(t, nn.Module)), objective]:
            fully_shard(unit, mesh=mesh, ignored_params=ignored)

    def average_replicated_gradients(self) -> None:
        """Average the unsharded parameters' gradients over the ranks (one all-reduce), as DDP
        does; call once per step after the last backward, on every rank."""
        params = [p for p in self.replicated if p.grad is not None]
        if not params:
            return
        grads = torch.stack([p.grad.reshape(()) for p in params])
        dist.all_reduce(grads, op=dist.ReduceOp.SUM, group=self.group)
        grads /= process_group.world_size(self.group)
        for param, grad in zip(params, grads, strict=True):
            param.grad.copy_(grad)

    def full_model(self, objective: nn.Module) -> nn.Module:
        """The unsharded copy holding `objective.model`'s current weights (collective)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(objective, options=_options())
        prefix = "model."
        self.copy.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        self.copy.train(objective.training)
        return self.copy


def _options(**kwargs):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kwargs)


def full_state(objective: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The objective's and the optimiser's state dicts with every tensor gathered, on the CPU
    (collective: every rank calls it; rank 0 writes them)."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    return get_state_dict(objective, optimizer, options=_options(cpu_offload=True))


def load_full_state(
    objective: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict, optim_state: dict
) -> None:
    """Load `full_state`'s dicts into the sharded objective and optimiser (every rank, each
    keeping its shard). Every weight must be there; optimiser state may lack parameters that
    never received a gradient (a baseline's text tower), as `Optimizer.load_state_dict` allows."""
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    set_model_state_dict(objective, model_state, options=_options())
    set_optimizer_state_dict(objective, optimizer, optim_state, options=_options(strict=False))
