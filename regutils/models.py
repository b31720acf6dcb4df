"""Image classifiers by name, each built from ``in_channels`` and ``num_classes``.

Usage::

    from regutils import models
    net = models.build("resnet20", in_channels=3, num_classes=10)
    side = models.input_size("resnet20")          # 32: the data module resizes to it
    models.count_parameters(net)                  # 269722
    models.names()                                # every registered name

Architectures (CIFAR variants take 32x32 input; ``small_cnn`` and ``mlp`` are
for the 8x8 scikit-learn digits):

- ResNet-20/32/44/56/110 (He et al. 2016), basic blocks with parameter-free
  option-A shortcuts (strided identity, zero-padded channels).
- DenseNet-BC with L = 100, k = 12 and L = 160, k = 24 (Huang et al. 2017).
- EfficientNet-B8 (Tan & Le 2019; width 2.2, depth 3.6, the AdvProp scaling of
  Xie et al. 2020), torchvision's EfficientNet with a stride-1 stem for 32x32 input.
- VGG-16 and VGG-19 with BatchNorm, one linear classifier 512 -> classes.
- MobileNet v1 (Howard et al. 2017), stride 1 in the first convolution.
- Wide ResNet WRN-16-8 and WRN-28-10 (Zagoruyko & Komodakis 2016).
- ``convnet3``: the plain reference network of the default profile, three blocks of
  conv3x3-BN-ReLU (one convolution per block) + 2x2 max pool at widths 32/64/128,
  global average pool, linear; ``convnet3_w2`` doubles the widths (64/128/256),
  ``convnet3_half`` halves them (16/32/64), ``convnet3x2`` has two conv-BN-ReLU per
  block at widths 32/64/128.
- LeNet-5 style, Network-in-Network (Lin et al. 2014, with BatchNorm),
  ``small_cnn`` (conv 1->32->64, one linear layer) and ``mlp`` (one hidden layer).

Trainable parameters of the CIFAR ResNets (in_channels=3, num_classes=10),
next to the values of He et al. (2016, Table 6):

=========  ===========  =====
name       parameters   paper
=========  ===========  =====
resnet20   269722       0.27M
resnet32   464154       0.46M
resnet44   658586       0.66M
resnet56   853018       0.85M
resnet110  1727962      1.7M
=========  ===========  =====

Trainable parameters of the plain networks (in_channels=3, num_classes=10):

=============  ==========
name           parameters
=============  ==========
convnet3       94762
convnet3_w2    373834
convnet3_half  24346
convnet3x2     288746
=============  ==========

Every model ends in a global (adaptive) average pool or fixed-size pool, so it
also runs at sizes other than its native one; all use standard layers only, so
they work with ``channels_last`` and under ``torch.autocast``.
"""

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .validation import Int, validate_params


def _init_resnet(module):
    # Kaiming-normal (fan-in) on conv and linear weights, as in the CIFAR ResNet reference.
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight)


def _init_fan_out(module):
    # Kaiming-normal (fan-out) convs, unit BatchNorm, zero biases: the DenseNet/WRN/VGG references.
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------- CIFAR ResNet


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels):
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x):
        pad = self.extra_channels // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, self.extra_channels - pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(planes - in_planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: a 3x3 stem, three stages of 16/32/64 channels, global pool, linear."""

    def __init__(self, block, num_blocks, in_channels, num_classes):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)
        self.apply(_init_resnet)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet20(in_channels, num_classes): return ResNet(BasicBlock, [3, 3, 3], in_channels, num_classes)
def resnet32(in_channels, num_classes): return ResNet(BasicBlock, [5, 5, 5], in_channels, num_classes)
def resnet44(in_channels, num_classes): return ResNet(BasicBlock, [7, 7, 7], in_channels, num_classes)
def resnet56(in_channels, num_classes): return ResNet(BasicBlock, [9, 9, 9], in_channels, num_classes)
def resnet110(in_channels, num_classes): return ResNet(BasicBlock, [18, 18, 18], in_channels, num_classes)


# ---------------------------------------------------------------- DenseNet-BC


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), output concatenated to the input."""

    def __init__(self, in_planes, growth_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], dim=1)


class Transition(nn.Module):
    def __init__(self, in_planes, out_planes):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetBC(nn.Module):
    """DenseNet-BC for 32x32 input: three dense blocks, compression 0.5 between them."""

    def __init__(self, depth, growth_rate, in_channels, num_classes, reduction=0.5):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 for DenseNet-BC, got {depth}")
        layers_per_block = (depth - 4) // 6
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        stages = []
        for i in range(3):
            for _ in range(layers_per_block):
                stages.append(DenseLayer(planes, growth_rate))
                planes += growth_rate
            if i < 2:
                out_planes = int(planes * reduction)
                stages.append(Transition(planes, out_planes))
                planes = out_planes
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)
        self.apply(_init_fan_out)

    def forward(self, x):
        out = F.relu(self.bn(self.features(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def densenet_bc_100_12(in_channels, num_classes):
    return DenseNetBC(100, 12, in_channels, num_classes)


def densenet_bc_160_24(in_channels, num_classes):
    return DenseNetBC(160, 24, in_channels, num_classes)


# ---------------------------------------------------------------- EfficientNet (torchvision)


def efficientnet(width_mult, depth_mult, dropout, in_channels, num_classes):
    """torchvision's EfficientNet scaled by width and depth, untrained, for 32x32 input.

    The stem convolution takes ``in_channels`` and has stride 1 instead of 2 (as MobileNet
    here), so the last stage sees 2x2 maps at 32x32 input rather than 1x1.
    """
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    setting, last_channel = _efficientnet_conf("efficientnet_b", width_mult=width_mult, depth_mult=depth_mult)
    # the BatchNorm of torchvision's efficientnet_b* builders
    net = EfficientNet(setting, dropout, num_classes=num_classes, last_channel=last_channel,
                       norm_layer=functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01))
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.features[0][0].weight, mode="fan_out")  # torchvision's init of its convs
    return net


def efficientnet_b8(in_channels, num_classes): return efficientnet(2.2, 3.6, 0.5, in_channels, num_classes)


# ---------------------------------------------------------------- VGG with BatchNorm

VGG_CONFIGS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """CIFAR VGG: 3x3 conv-BN-ReLU stacks, five max pools (32 -> 1), linear 512 -> classes."""

    def __init__(self, depth, in_channels, num_classes):
        super().__init__()
        layers, planes = [], in_channels
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(planes, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                planes = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)
        self.apply(_init_fan_out)

    def forward(self, x):
        out = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(out)


def vgg16_bn(in_channels, num_classes): return VGG(16, in_channels, num_classes)
def vgg19_bn(in_channels, num_classes): return VGG(19, in_channels, num_classes)


# ---------------------------------------------------------------- MobileNet v1


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, in_planes, 3, stride=stride, padding=1,
                               groups=in_planes, bias=False)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, out_planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)))


class MobileNet(nn.Module):
    """MobileNet v1 for 32x32 input: the ImageNet layout with a stride-1 stem."""

    # (out_channels, stride) of the 13 depthwise-separable blocks
    CONFIG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, planes = [], 32
        for out_planes, stride in self.CONFIG:
            blocks.append(DepthwiseSeparable(planes, out_planes, stride))
            planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(1024, num_classes)
        self.apply(_init_fan_out)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def mobilenet(in_channels, num_classes): return MobileNet(in_channels, num_classes)


# ---------------------------------------------------------------- Wide ResNet


class WideBlock(nn.Module):
    """Pre-activation block BN-ReLU-Conv3x3-BN-ReLU-Conv3x3; 1x1 conv shortcut on shape change."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        # the projection sees the pre-activated input, as in the reference implementation
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-depth-widen: stem of 16 channels, stages of 16k/32k/64k channels, n = (depth - 4) / 6."""

    def __init__(self, depth, widen, in_channels, num_classes):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 for a Wide ResNet, got {depth}")
        n = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        blocks, planes = [], 16
        for width, stride in zip(widths, [1, 2, 2]):
            for s in [stride] + [1] * (n - 1):
                blocks.append(WideBlock(planes, width, s))
                planes = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)
        self.apply(_init_fan_out)

    def forward(self, x):
        out = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def wrn16_8(in_channels, num_classes): return WideResNet(16, 8, in_channels, num_classes)
def wrn28_10(in_channels, num_classes): return WideResNet(28, 10, in_channels, num_classes)


# ---------------------------------------------------------------- plain conv network


class ConvNet(nn.Module):
    """Blocks of ``convs`` x (conv3x3-BN-ReLU) + 2x2 max pool at ``widths``, global average pool, linear."""

    def __init__(self, widths, convs, in_channels, num_classes):
        super().__init__()
        layers, planes = [], in_channels
        for width in widths:
            for _ in range(convs):
                layers += [nn.Conv2d(planes, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                           nn.ReLU(inplace=True)]
                planes = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(planes, num_classes)
        self.apply(_init_fan_out)

    def forward(self, x):
        return self.linear(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def convnet3(in_channels, num_classes): return ConvNet((32, 64, 128), 1, in_channels, num_classes)
def convnet3_w2(in_channels, num_classes): return ConvNet((64, 128, 256), 1, in_channels, num_classes)
def convnet3_half(in_channels, num_classes): return ConvNet((16, 32, 64), 1, in_channels, num_classes)
def convnet3x2(in_channels, num_classes): return ConvNet((32, 64, 128), 2, in_channels, num_classes)


# ---------------------------------------------------------------- small networks


class LeNet(nn.Module):
    """LeNet-5 style for 32x32: conv5(6)-pool-conv5(16)-pool-120-84-classes, ReLU."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(5),  # identity at 32x32 input
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )
        self.apply(_init_resnet)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _nin_block(in_planes, widths, kernel_size):
    """One kxk conv then two 1x1 convs, each followed by BatchNorm and ReLU."""
    layers = []
    for i, width in enumerate(widths):
        k = kernel_size if i == 0 else 1
        layers += [nn.Conv2d(in_planes, width, k, padding=k // 2, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_planes = width
    return layers


class NiN(nn.Module):
    """Network-in-Network for CIFAR (Lin et al. 2014) with BatchNorm and a 1x1 conv classifier."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            *_nin_block(in_channels, [192, 160, 96], 5),
            nn.MaxPool2d(3, stride=2, padding=1),  # 32 -> 16
            *_nin_block(96, [192, 192, 192], 5),
            nn.AvgPool2d(3, stride=2, padding=1),  # 16 -> 8
            *_nin_block(192, [192, 192], 3),
            nn.Conv2d(192, num_classes, 1),  # one map per class, averaged into the logits
        )
        self.apply(_init_fan_out)

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


class SmallCNN(nn.Module):
    """For 8x8 digits: conv3(32)-conv3(64)-maxpool to 4x4, one linear layer (~29k parameters)."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),  # identity at 8x8 input
        )
        self.linear = nn.Linear(64 * 4 * 4, num_classes)
        self.apply(_init_resnet)

    def forward(self, x):
        return self.linear(self.features(x).flatten(1))


class MLP(nn.Module):
    """Flatten an 8x8 image, one ReLU hidden layer, linear output."""

    def __init__(self, in_channels, num_classes, hidden=128, side=8):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(side)  # identity at the native size
        self.hidden = nn.Linear(in_channels * side * side, hidden)
        self.out = nn.Linear(hidden, num_classes)
        self.apply(_init_resnet)

    def forward(self, x):
        return self.out(F.relu(self.hidden(self.pool(x).flatten(1))))


def lenet(in_channels, num_classes): return LeNet(in_channels, num_classes)
def nin(in_channels, num_classes): return NiN(in_channels, num_classes)
def small_cnn(in_channels, num_classes): return SmallCNN(in_channels, num_classes)
def mlp(in_channels, num_classes): return MLP(in_channels, num_classes)


# ---------------------------------------------------------------- registry

# name -> (factory, native square input side)
_REGISTRY = {
    "resnet20": (resnet20, 32),
    "resnet32": (resnet32, 32),
    "resnet44": (resnet44, 32),
    "resnet56": (resnet56, 32),
    "resnet110": (resnet110, 32),
    "densenet_bc_100_12": (densenet_bc_100_12, 32),
    "densenet_bc_160_24": (densenet_bc_160_24, 32),
    "efficientnet_b8": (efficientnet_b8, 32),
    "vgg16_bn": (vgg16_bn, 32),
    "vgg19_bn": (vgg19_bn, 32),
    "mobilenet": (mobilenet, 32),
    "wrn16_8": (wrn16_8, 32),
    "wrn28_10": (wrn28_10, 32),
    "convnet3": (convnet3, 32),
    "convnet3_w2": (convnet3_w2, 32),
    "convnet3_half": (convnet3_half, 32),
    "convnet3x2": (convnet3x2, 32),
    "lenet": (lenet, 32),
    "nin": (nin, 32),
    "small_cnn": (small_cnn, 8),
    "mlp": (mlp, 8),
}


# architectures that draw random numbers in train mode (dropout, stochastic depth)
_STOCHASTIC = {"efficientnet_b8"}


def names():
    """All registered architecture names."""
    return list(_REGISTRY)


def stochastic(name):
    """Whether architecture ``name`` draws random numbers in train mode (dropout, stochastic depth).

    A vmap-ed stack of runs (:mod:`regutils.stacked`) cannot train such a model: its runs are trained one by one.
    """
    _lookup(name)
    return name in _STOCHASTIC


def _lookup(name):
    if name not in _REGISTRY:
        raise ValueError(f"unknown model name {name!r}; known names: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


@validate_params(in_channels=Int(1), num_classes=Int(1))
def build(name, in_channels, num_classes):
    """A freshly initialised model ``name`` for ``in_channels`` input channels and ``num_classes`` outputs."""
    factory, _ = _lookup(name)
    return factory(int(in_channels), int(num_classes))


def input_size(name):
    """The native square image side of architecture ``name`` (32 for CIFAR models, 8 for digits)."""
    return _lookup(name)[1]


def count_parameters(model):
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def classifier_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The layer that maps features to logits: the model's last ``nn.Linear`` in registration order,
    or, for an all-convolutional network such as NiN, its last 1x1 ``nn.Conv2d`` (whose maps are
    averaged into the logits)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if linears:
        return linears[-1]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    if convs:
        return convs[-1]
    raise ValueError(f"model {type(model).__name__} has neither an nn.Linear nor a 1x1 nn.Conv2d classifier: "
                     "penultimate features need a linear classifier")
