"""Image and text encoders, tokenizers, the UniCL dual encoder, named configs and save/load.

Importing the package registers the encoder families (each family file registers itself).
"""

from unicl.models import (  # noqa: F401 (registration)
    efficientnet,
    hf_text,
    resnet,
    swin,
    text_transformer,
    vit,
)
from unicl.models.config import list_models
from unicl.models.factory import create_model, load
from unicl.models.model import UniCLModel
from unicl.models.tokenizer import Tokenizer, train_bpe

__all__ = [
    "Tokenizer",
    "UniCLModel",
    "create_model",
    "list_models",
    "load",
    "train_bpe",
]
