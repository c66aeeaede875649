"""Constants shared across layers, each with one meaning.

`CLIP_MEAN`, `CLIP_STD`: the per-channel mean and standard deviation of OpenAI CLIP's training
images, on 0-1 pixel values (RGB), used to normalise images for CLIP-style towers.
`IMAGENET_MEAN`, `IMAGENET_STD`: the same for ImageNet-1k's training images (torchvision's and
timm's defaults).
"""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
