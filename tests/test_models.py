import functools
import math
import re

import pytest
import torch
import torch.nn as nn

from regutils import models

ALL_NAMES = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "densenet_bc_100_12",
             "densenet_bc_160_24", "efficientnet_b8", "vgg16_bn", "vgg19_bn", "mobilenet", "wrn16_8", "wrn28_10",
             "convnet3", "convnet3_w2", "convnet3_half", "convnet3x2", "lenet", "nin", "small_cnn", "mlp"]


# slow at 32x32 on a CPU: checked at a small input instead (test_large_models_at_small_input)
LARGE = ["densenet_bc_160_24", "efficientnet_b8"]


@functools.lru_cache(maxsize=None)
def built(name, in_channels, num_classes):
    torch.manual_seed(0)
    return models.build(name, in_channels, num_classes).eval()


def resnet_table():
    """Rows (name, parameters, paper value) of the table in the module docstring."""
    rows = re.findall(r"^(resnet\d+)\s+(\d+)\s+([\d.]+)M\s*$", models.__doc__, flags=re.MULTILINE)
    return [(name, int(count), paper) for name, count, paper in rows]


def convnet_table():
    """Rows (name, parameters) of the plain networks' table in the module docstring."""
    return [(name, int(count)) for name, count in
            re.findall(r"^(convnet3\w*)\s+(\d+)\s*$", models.__doc__, flags=re.MULTILINE)]


def convnet_parameters_by_hand(widths, convs, in_channels=3, num_classes=10):
    # bias-free 3x3 convs, BatchNorm (weight and bias) after each, linear from the last width
    total, planes = 0, in_channels
    for width in widths:
        for _ in range(convs):
            total += 9 * planes * width + 2 * width
            planes = width
    return total + planes * num_classes + num_classes


def test_names_are_the_registry():
    assert models.names() == ALL_NAMES


def test_input_sizes():
    assert {n: models.input_size(n) for n in ALL_NAMES} == {
        n: 8 if n in ("small_cnn", "mlp") else 32 for n in ALL_NAMES}


def test_docstring_table_lists_every_resnet():
    assert [row[0] for row in resnet_table()] == ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


@pytest.mark.parametrize("name, count, paper", resnet_table())
def test_resnet_parameters_match_table_and_paper(name, count, paper):
    actual = models.count_parameters(built(name, 3, 10))
    assert actual == count
    decimals = len(paper.split(".")[1])
    assert round(actual / 1e6, decimals) == float(paper)


def test_resnet_parameters_follow_depth():
    # 6n + 2 layers: every extra block pair per stage adds the same number of parameters
    counts = [models.count_parameters(built(n, 3, 10)) for n in ["resnet20", "resnet32", "resnet44", "resnet56"]]
    assert len({b - a for a, b in zip(counts, counts[1:])}) == 1


@pytest.mark.parametrize("name, low, high", [
    ("densenet_bc_100_12", 0.77e6 * 0.98, 0.8e6 * 1.02),
    ("wrn16_8", 11.0e6 * 0.98, 11.0e6 * 1.02),
    ("wrn28_10", 36.5e6 * 0.98, 36.5e6 * 1.02),
])
def test_published_parameter_counts(name, low, high):
    assert low <= models.count_parameters(built(name, 3, 10)) <= high


def torchvision_densenet_bc(depth, growth_rate, num_classes):
    """torchvision's DenseNet-BC with three blocks of (depth - 4) / 6 layers: the reference for ours."""
    from torchvision.models import DenseNet

    n = (depth - 4) // 6
    return DenseNet(growth_rate=growth_rate, block_config=(n, n, n), num_init_features=2 * growth_rate,
                    bn_size=4, num_classes=num_classes)


@pytest.mark.parametrize("name, depth, growth_rate", [("densenet_bc_100_12", 100, 12), ("densenet_bc_160_24", 160, 24)])
@pytest.mark.slow
def test_densenet_parameters_match_torchvision(name, depth, growth_rate):
    # same blocks and transitions; torchvision's ImageNet stem is a 7x7 conv plus a BatchNorm, ours a 3x3 conv
    stem = 2 * growth_rate
    reference = models.count_parameters(torchvision_densenet_bc(depth, growth_rate, 10))
    expected = reference - 7 * 7 * 3 * stem - 2 * stem + 3 * 3 * 3 * stem
    assert models.count_parameters(built(name, 3, 10)) == expected


@pytest.mark.slow
def test_efficientnet_b8_has_the_published_size():
    # 87.4M parameters with the 1000-class ImageNet head (Xie et al. 2020, Table 1)
    count = models.count_parameters(built("efficientnet_b8", 3, 1000))
    assert round(count / 1e6, 1) == 87.4
    # only the stem depends on the input channels (3x3 conv, 72 filters), only the head on the classes
    head = 993 * (2816 + 1)  # 1000 - 7 classes, each 2816 weights and a bias
    assert count - models.count_parameters(built("efficientnet_b8", 3, 7)) == head
    assert count - models.count_parameters(built("efficientnet_b8", 1, 7)) == head + 2 * 9 * 72


def test_convnet_table_lists_every_plain_network():
    assert [name for name, _ in convnet_table()] == ["convnet3", "convnet3_w2", "convnet3_half", "convnet3x2"]


@pytest.mark.parametrize("name, count", convnet_table())
def test_convnet_parameters_match_table_and_hand_count(name, count):
    layout = {"convnet3": ((32, 64, 128), 1), "convnet3_w2": ((64, 128, 256), 1),
              "convnet3_half": ((16, 32, 64), 1), "convnet3x2": ((32, 64, 128), 2)}
    assert models.count_parameters(built(name, 3, 10)) == count == convnet_parameters_by_hand(*layout[name])


def test_convnet_layers():
    net = built("convnet3x2", 3, 10)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d"] + (["Conv2d", "BatchNorm2d", "ReLU"] * 2
                                                                            + ["MaxPool2d"]) * 2
    assert [type(m).__name__ for m in built("convnet3", 3, 10).features].count("Conv2d") == 3


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", LARGE)
@pytest.mark.slow
def test_large_models_at_small_input(name, in_channels):
    x = torch.randn(2, in_channels, 8, 8)
    with torch.no_grad():
        out = built(name, in_channels, 7)(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.slow
def test_efficientnet_stem_keeps_the_resolution():
    net = built("efficientnet_b8", 3, 7)
    with torch.no_grad():
        maps = net.features(torch.randn(1, 3, 32, 32))
    assert maps.shape[-2:] == (2, 2)  # four stride-2 stages after a stride-1 stem: 32 / 16


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.slow
def test_stochastic_names_the_models_with_random_layers(name):
    from torchvision.ops import StochasticDepth

    random_layers = [m for m in built(name, 3, 7).modules() if isinstance(m, (nn.Dropout, StochasticDepth))]
    assert models.stochastic(name) == bool(random_layers)


def test_small_model_parameters_by_hand():
    # conv 1->32 (3x3), conv 32->64 (3x3), linear 64*4*4 -> 10, all with biases
    assert models.count_parameters(built("small_cnn", 1, 10)) == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (1024 * 10 + 10)
    assert models.count_parameters(built("mlp", 1, 10)) == (64 * 128 + 128) + (128 * 10 + 10)
    lenet = (25 * 3 * 6 + 6) + (25 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert models.count_parameters(built("lenet", 3, 10)) == lenet


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in LARGE])
@pytest.mark.slow
def test_output_shape_at_native_size(name, in_channels):
    side = models.input_size(name)
    x = torch.randn(2, in_channels, side, side)
    with torch.no_grad():
        out = built(name, in_channels, 7)(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in ["wrn28_10", *LARGE]])  # same code as smaller ones
def test_channels_last_gives_the_same_output(name):
    side = models.input_size(name)
    x = torch.randn(2, 3, side, side)
    net = built(name, 3, 5)
    with torch.no_grad():
        expected = net(x)
        net_cl = net.to(memory_format=torch.channels_last)
        actual = net_cl(x.contiguous(memory_format=torch.channels_last))
        net.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet20", "densenet_bc_100_12", "mobilenet", "nin", "small_cnn"])
def test_autocast_forward(name):
    side = models.input_size(name)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = built(name, 3, 4)(x)
    assert out.shape == (2, 4)
    assert torch.isfinite(out.float()).all()


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    net = models.build("resnet20", 3, 10).train()
    loss = nn.functional.cross_entropy(net(torch.randn(2, 3, 32, 32)), torch.tensor([1, 2]))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_kaiming_initialisation():
    # fan-in for the CIFAR ResNet, fan-out for the Wide ResNet (as in their references)
    conv = built("resnet20", 3, 10).layer3[1].conv1  # 64 -> 64, 3x3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    conv = built("wrn16_8", 3, 10).blocks[3].conv2  # 256 -> 256, 3x3
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)


def test_count_parameters_skips_frozen():
    net = models.build("mlp", 1, 10)
    total = models.count_parameters(net)
    net.hidden.weight.requires_grad_(False)
    assert models.count_parameters(net) == total - 64 * 128


def test_unknown_name():
    with pytest.raises(ValueError, match="known names.*resnet20.*mlp"):
        models.build("resnet18", 3, 10)
    with pytest.raises(ValueError, match="resnet18"):
        models.input_size("resnet18")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_bad_channel_counts(bad):
    with pytest.raises(ValueError, match="in_channels"):
        models.build("lenet", bad, 10)
    with pytest.raises(ValueError, match="num_classes"):
        models.build("lenet", 3, bad)


def conv_bn(cin, cout, k=3, bias=True, groups=1):
    """Parameters of a k x k convolution (with or without bias) followed by BatchNorm (weight and bias)."""
    return k * k * (cin // groups) * cout + (cout if bias else 0) + 2 * cout


def test_vgg16_parameters_by_hand():
    # 13 conv3x3 (with bias) + BN layers of the VGG-16 configuration, then one linear 512 -> classes
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    expected = sum(conv_bn(cin, cout) for cin, cout in zip([3] + widths[:-1], widths)) + 512 * 10 + 10
    assert models.count_parameters(built("vgg16_bn", 3, 10)) == expected
    convs = [m for m in built("vgg16_bn", 3, 10).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13  # VGG-16's 13 convolutions; its three FC layers become one linear layer on 32x32


def test_mobilenet_is_v1_with_its_parameter_count():
    # Howard et al. (2017), the MobileNet Lee et al. use: a 3x3 stem of 32 channels, 13 depthwise-separable
    # blocks (depthwise 3x3 + BN, pointwise 1x1 + BN, no biases), global pooling, one linear layer
    widths = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    blocks = sum(conv_bn(cin, cin, bias=False, groups=cin) + conv_bn(cin, cout, k=1, bias=False)
                 for cin, cout in zip(widths[:-1], widths[1:]))
    expected = conv_bn(3, 32, bias=False) + blocks + 1024 * 10 + 10
    assert models.count_parameters(built("mobilenet", 3, 10)) == expected
    # with ImageNet's 1000 classes: the 4.2 million parameters of 1.0 MobileNet-224 (Howard et al.)
    assert round(models.count_parameters(built("mobilenet", 3, 1000)) / 1e6, 1) == 4.2
