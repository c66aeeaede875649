"""Constants shared across layers, each with one meaning.

`CLIP_MEAN`, `CLIP_STD`: the per-channel mean and standard deviation of OpenAI CLIP's training
images, on 0-1 pixel values (RGB), used to normalise images for CLIP-style towers.
`IMAGENET_MEAN`, `IMAGENET_STD`: the same for ImageNet-1k's training images (torchvision's and
timm's defaults).
`MAX_THREADS`: the most CPU threads a command (`--threads`) or a run (`run.threads`) may ask
PyTorch for; more overflow its thread count or exhaust the machine.
`MAX_SEED`: the largest random seed (`run.seed`); seeds are non-negative, as NumPy's
`SeedSequence` requires, and fit in 63 bits, as `torch.manual_seed` requires.
"""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_THREADS = 1024
MAX_SEED = 2**63 - 1
