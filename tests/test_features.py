import numpy as np
import pytest
import torch

from regutils import models
from regutils.features import (IMAGENET_MEAN, IMAGENET_STD, FeatureError, imagenet_inputs,
                               imagenet_vgg19_features, penultimate_features)


class Tiny(torch.nn.Module):
    """conv -> BatchNorm -> ReLU -> flatten -> linear(8) -> ReLU -> linear(3)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(2)
        self.hidden = torch.nn.Linear(2 * 4 * 4, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(torch.relu(self.bn(self.conv(x))).flatten(1))))


def test_penultimate_features_match_manual_computation():
    torch.manual_seed(0)
    model = Tiny()
    model.bn.running_mean.normal_()  # eval mode must use these, not batch statistics
    model.bn.running_var.uniform_(0.5, 2.0)
    model.train()
    x = torch.randn(7, 1, 4, 4)
    feats = penultimate_features(model, x, batch_size=3)
    with torch.no_grad():
        bn = model.bn
        h = (model.conv(x) - bn.running_mean[None, :, None, None]) / torch.sqrt(
            bn.running_var[None, :, None, None] + bn.eps)
        h = torch.relu(h * bn.weight[None, :, None, None] + bn.bias[None, :, None, None])
        expected = torch.relu(h.flatten(1) @ model.hidden.weight.T + model.hidden.bias)
    assert feats.shape == (7, 8) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not model.training
    # the hook is removed: a later forward pass records nothing more
    assert not model.out._forward_hooks


def test_penultimate_features_of_the_zoo_feed_the_classifier():
    torch.manual_seed(1)
    model = models.build("small_cnn", 1, 10).eval()
    x = torch.randn(5, 1, 8, 8)
    feats = penultimate_features(model, x)
    assert models.classifier_layer(model) is model.linear and feats.shape == (5, 64 * 4 * 4)
    with torch.no_grad():
        np.testing.assert_allclose(model.linear(torch.from_numpy(feats)).numpy(),
                                   model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_penultimate_features_of_a_conv_classifier_feed_it():
    """NiN ends in a 1x1 conv averaged into the logits: its pooled input maps linearly to them."""
    torch.manual_seed(2)
    model = models.build("nin", 3, 10).eval()
    x = torch.randn(3, 3, 32, 32)
    feats = penultimate_features(model, x)
    conv = models.classifier_layer(model)
    assert conv is model.features[-1] and feats.shape == (3, 192)
    with torch.no_grad():
        logits = torch.from_numpy(feats) @ conv.weight.flatten(1).T + conv.bias
        np.testing.assert_allclose(logits.numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_model_without_classifier_layer():
    with pytest.raises(ValueError, match="nn.Linear nor a 1x1"):
        penultimate_features(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), torch.zeros(1, 1, 4, 4))


def test_imagenet_inputs():
    grey = np.zeros((2, 8, 8), dtype=np.uint8)
    grey[1] = 255
    x = imagenet_inputs(grey, size=16)
    assert x.shape == (2, 3, 16, 16)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), -mean / std, rtol=1e-6)
    np.testing.assert_allclose(x[1, :, 0, 0].numpy(), (1 - mean) / std, rtol=1e-6)
    with pytest.raises(ValueError, match="images"):
        imagenet_inputs(np.zeros((2, 8, 8, 2)))


@pytest.mark.slow
def test_imagenet_features_without_weights_raise(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty weight cache
    with pytest.raises(FeatureError, match="VGG-19 weights cannot be loaded"):
        imagenet_vgg19_features(np.zeros((1, 8, 8), dtype=np.uint8))
