"""UniCL: unified contrastive learning in image-text-label space."""

__version__ = "0.1.0"
