"""Image features for probes that classify samples outside the network (paper §3.3.2, Table 1).

    from regutils.features import FeatureError, imagenet_vgg19_features, penultimate_features
    feats = penultimate_features(model, data.x_train)          # (N, D) float32, the input of the
                                                                # model's classifier layer
    try:
        feats = imagenet_vgg19_features(data.images_train)      # (N, 4096) float32
    except FeatureError:                                        # no ImageNet weights here
        ...

Penultimate features are what the classifier head of a trained network sees: a forward hook on
the last ``nn.Linear`` (in module registration order), or on the 1x1 conv classifier of an
all-convolutional network, records its input, in eval mode.
ImageNet features follow the paper: a VGG-19 pretrained on ImageNet, images resized to 224x224,
grey images repeated on three channels, normalized with the ImageNet statistics; the feature is
the input of the last fully connected layer (4096 values). The weights come from torchvision's
cache (``torch.hub.get_dir()/checkpoints``); with ``download=False`` (default) nothing is
fetched, and missing weights raise :class:`FeatureError` at once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import models
from .validation import Int, check

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_SIZE = 224


class FeatureError(RuntimeError):
    """Features that cannot be computed here (e.g. pretrained weights that cannot be loaded)."""


@torch.inference_mode()
def penultimate_features(model: torch.nn.Module, x, batch_size: int = 1000) -> np.ndarray:
    """(N, D) float32 inputs of the model's classifier layer for inputs x (N, ...), eval mode.

    The classifier layer is that of :func:`regutils.models.classifier_layer`; the input of a 1x1 conv classifier is
    averaged over its spatial positions, as the network averages the class maps (the average
    commutes with the 1x1 conv, so the features still map linearly to the logits).
    x: a tensor (or array) of network inputs, normalized as for training; it is moved to the
    model's device batch by batch. The model is left in eval mode.
    """
    check("batch_size", batch_size, Int(1))
    x = torch.as_tensor(x)
    device = next(model.parameters()).device
    layer = models.classifier_layer(model)
    pool = isinstance(layer, torch.nn.Conv2d)
    captured = []

    def keep(module, inputs, output):
        feats = inputs[0].detach().float()
        captured.append((feats.mean((2, 3)) if pool else feats).cpu())

    hook = layer.register_forward_hook(keep)
    try:
        model.eval()
        for start in range(0, len(x), int(batch_size)):
            model(x[start:start + int(batch_size)].to(device, torch.float32))
    finally:
        hook.remove()
    if not captured:
        raise ValueError("x is empty")
    return torch.cat(captured).flatten(1).numpy()


def imagenet_inputs(images, size: int = IMAGENET_SIZE) -> torch.Tensor:
    """Images (K, H, W) or (K, H, W, C), uint8 or floats in [0, 1] -> (K, 3, size, size) tensor.

    Grey images are repeated on three channels; bilinear resizing; ImageNet normalization.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape (K, H, W) or (K, H, W, C) with C in 1, 3, "
                         f"got {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    if images.dtype == np.uint8:
        x = x / 255.0
    x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD)[None, :, None, None]
    return (x - mean) / std


def imagenet_vgg19(download: bool = False) -> torch.nn.Module:
    """torchvision's ImageNet VGG-19 in eval mode; FeatureError when its weights cannot be loaded."""
    try:
        from torchvision.models import VGG19_Weights, vgg19

        weights = VGG19_Weights.IMAGENET1K_V1
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not download and not cached.is_file():
            raise FileNotFoundError(f"{cached} does not exist and download=False")
        return vgg19(weights=weights).eval()
    except Exception as err:  # no torchvision, no cache, no network, a corrupt file: one answer
        raise FeatureError(f"the ImageNet VGG-19 weights cannot be loaded ({err}); "
                           "use features of the trained network instead") from err


def imagenet_vgg19_features(images, batch_size: int = 64, device: str = "auto",
                            download: bool = False) -> np.ndarray:
    """(K, 4096) float32 ImageNet VGG-19 features of images (K, H, W[, C]), uint8 or [0, 1].

    Raises FeatureError when the pretrained weights cannot be loaded (see :func:`imagenet_vgg19`).
    """
    model = imagenet_vgg19(download)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    images = np.asarray(images)
    chunks = [penultimate_features(model, imagenet_inputs(images[start:start + 1024]), batch_size)
              for start in range(0, len(images), 1024)]  # resized inputs of 1024 images: 600 MB
    return np.concatenate(chunks)
