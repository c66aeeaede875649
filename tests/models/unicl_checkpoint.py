"""microsoft/UniCL checkpoint files as the official code writes them (`utils.save_checkpoint`:
`torch.save({"model": state_dict, "config": yacs CfgNode, "epoch": ..., ...})`), for tests.

yacs is not installed here, so `CfgNode` is a stand-in with yacs' module, class name and pickled
state (a dict subclass whose instance dict holds yacs' four flags); a file saved with it holds the
same pickle opcodes as one saved with yacs 0.1.8 (checked byte for byte when this was written).
The sizes are those of the tiny models of `unicl_reference`.
"""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import torch

IMAGE_SIZE = 64
WINDOW = 4
DEPTHS = (2, 2, 2)
HEADS = (1, 2, 4)
EMBED_DIM = 16
TEXT_WIDTH = 32
TEXT_HEADS = 2
PROJECTION = 24


def official_config(**text_encoder) -> dict:
    """The parts of the official config (`config.py` defaults + `unicl_swin_tiny.yaml`) that
    describe the model, sized as the tiny models (`CONTEXT_LENGTH` left at its default, which the
    converter does not read: the position table says it); `text_encoder` overrides its keys."""
    return {
        "MODEL": {
            "NAME": "unicl_swin_tiny",
            "DIM_PROJECTION": PROJECTION,
            "IMAGE_ENCODER": {
                "TYPE": "swin",
                "IMG_SIZE": IMAGE_SIZE,
                "DROP_PATH_RATE": 0.2,
                "SWIN": {
                    "PATCH_SIZE": 4,
                    "IN_CHANS": 3,
                    "EMBED_DIM": EMBED_DIM,
                    "DEPTHS": list(DEPTHS),
                    "NUM_HEADS": list(HEADS),
                    "WINDOW_SIZE": WINDOW,
                    "MLP_RATIO": 4.0,
                    "QKV_BIAS": True,
                    "QK_SCALE": None,
                    "APE": False,
                    "PATCH_NORM": True,
                },
            },
            "TEXT_ENCODER": {
                "NAME": "transformer",
                "LOAD_PRETRAINED": False,
                "TOKENIZER": "clip",
                "WIDTH": TEXT_WIDTH,
                "HEADS": TEXT_HEADS,
                "LAYERS": 2,
                "AUTOGRESSIVE": True,
                **text_encoder,
            },
        },
        "TRAIN": {"OPTIMIZER": {"NAME": "adamw", "BETAS": (0.9, 0.999)}},
        "AUG": {"CUTMIX_MINMAX": None},
    }


class CfgNode(dict):
    """A stand-in for `yacs.config.CfgNode` with its module, name and pickled state: a dict
    subclass whose instance dict holds yacs' four flags, nested mappings converted to nodes."""

    def __init__(self, entries: dict, frozen: bool = True):
        super().__init__(
            (key, CfgNode(value, frozen) if isinstance(value, dict) else value)
            for key, value in entries.items()
        )
        self.__dict__.update(
            __immutable__=frozen,
            __deprecated_keys__=set(),
            __renamed_keys__={},
            __new_allowed__=False,
        )


@contextmanager
def yacs_importable():
    """Within the block, `yacs.config.CfgNode` is this module's `CfgNode`: pickles name it so, and
    unsafe loads (the controls of the safety tests) find it."""
    package, module = types.ModuleType("yacs"), types.ModuleType("yacs.config")
    module.CfgNode = CfgNode
    with mock.patch.dict(sys.modules, {"yacs": package, "yacs.config": module}):
        CfgNode.__module__ = "yacs.config"
        try:
            yield
        finally:
            CfgNode.__module__ = __name__


def save_official(path: Path, state: dict, config: object, **extras) -> Path:
    """`torch.save` of `{"model": state, "config": ..., "epoch": 0, **extras}` with `CfgNode`
    pickled as `yacs.config.CfgNode`: `config` a dict is saved as `CfgNode(config)`, None leaves
    the entry out, anything else is saved as it is."""
    record = {"model": state, "epoch": 0, "max_accuracy": 0.5, **extras}
    if config is not None:
        record["config"] = CfgNode(config) if isinstance(config, dict) else config
    with yacs_importable():
        torch.save(record, path)
    return path
