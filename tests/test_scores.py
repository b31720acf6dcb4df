import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regutils import measures, scores

# 3 epochs, 2 samples, 2 classes; sample 0 has label 0, sample 1 label 1
LOGITS = np.array([[[2.0, 1.0], [1.0, 1.0]],
                   [[0.0, 3.0], [0.0, 2.0]],
                   [[4.0, 0.0], [3.0, 1.0]]])
LABELS = np.array([0, 1])
# margins by hand: sample 0: 2-1, 0-3, 4-0 = 1, -3, 4; sample 1: 1-1, 2-0, 1-3 = 0, 2, -2
MARGINS = np.array([[1.0, 0.0], [-3.0, 2.0], [4.0, -2.0]])

# T = 4 epochs; samples: learned and forgotten once, never learned, forgotten twice,
# always correct, learned late
RECORD = np.array([[0, 0, 1, 1, 0],
                   [1, 0, 0, 1, 0],
                   [0, 0, 1, 1, 1],
                   [1, 0, 0, 1, 1]], dtype=bool)


def test_margin_and_aum_by_hand():
    np.testing.assert_array_equal(scores.margin(LOGITS, LABELS), MARGINS)
    np.testing.assert_allclose(scores.aum(MARGINS), [2 / 3, 0.0])
    np.testing.assert_allclose(scores.aum(MARGINS, epochs=2), [-1.0, 1.0])
    np.testing.assert_allclose(scores.aum(MARGINS, epochs=[1, 3]), [2.5, -1.0])
    runs = np.stack([MARGINS, -MARGINS])  # (R, T, N) -> (R, N)
    np.testing.assert_allclose(scores.aum(runs), [[2 / 3, 0.0], [-2 / 3, 0.0]])
    assert scores.aum(MARGINS.astype(np.float16)).dtype == np.float64


def test_margin_ignores_the_label_even_when_it_is_largest():
    logits = np.array([[5.0, 1.0, 3.0]])
    assert scores.margin(logits, [0]).tolist() == [2.0]
    assert scores.margin(logits, [2]).tolist() == [-2.0]


def test_el2n_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    expected = [math.sqrt(0.3**2 + 0.2**2 + 0.1**2), math.sqrt(0.1**2 + 0.1**2 + 0.2**2)]
    np.testing.assert_allclose(scores.el2n(p, [0, 2]), expected)
    # two runs are averaged: a confident correct run scores 0
    perfect = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(scores.el2n(np.stack([p, perfect]), [0, 2]), np.array(expected) / 2)
    # with an epoch axis, epoch t (1-based) is taken
    by_epoch = np.stack([perfect, p])  # (T=2, N, C)
    np.testing.assert_allclose(scores.el2n(by_epoch, [0, 2], epoch=2), expected)
    np.testing.assert_allclose(scores.el2n(by_epoch, [0, 2], epoch=1), [0, 0])
    # a wrong confident prediction: sqrt(2)
    np.testing.assert_allclose(scores.el2n(np.array([[0.0, 1.0]]), [0]), [math.sqrt(2)])


def test_el2n_rejects_bad_inputs():
    p = np.array([[0.7, 0.2, 0.1]])
    with pytest.raises(ValueError, match="summing to 1"):
        scores.el2n(np.array([[2.0, 1.0, 0.0]]), [0])
    with pytest.raises(ValueError, match="labels must be integers in 0..2"):
        scores.el2n(p, [3])
    with pytest.raises(ValueError, match="beyond the 1 epochs"):
        scores.el2n(p[None], [0], epoch=2)
    with pytest.raises(ValueError, match="epoch=0"):
        scores.el2n(p[None], [0], epoch=0)
    with pytest.raises(ValueError, match=r"\(N, C\) or \(R, N, C\)"):
        scores.el2n(p[0], [0])


@pytest.mark.parametrize("bias", [False, True])
def test_grand_of_softmax_regression_is_analytic(bias):
    torch.manual_seed(0)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    model = torch.nn.Linear(4, 3, bias=bias).double()
    x = x.double()
    # dL/dW = (p - onehot(y)) x^T, dL/db = p - onehot(y): the norm factorizes
    with torch.no_grad():
        err = model(x).softmax(1) - F.one_hot(y, 3)
    expected = err.norm(dim=1) * (x.pow(2).sum(1) + (1.0 if bias else 0.0)).sqrt()
    np.testing.assert_allclose(scores.grand(model, x, y, batch_size=3), expected.numpy(), rtol=1e-10)
    # two models: the mean of their scores
    other = torch.nn.Linear(4, 3, bias=bias).double()
    both = scores.grand([model, other], x, y)
    np.testing.assert_allclose(both, (scores.grand(model, x, y) + scores.grand(other, x, y)) / 2, rtol=1e-12)


def test_grand_restores_modes_and_skips_frozen_parameters():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 3))
    net.train()
    net[0].weight.requires_grad_(False)
    net[0].bias.requires_grad_(False)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    g = scores.grand(net, x, y, batch_size=5)
    assert g.shape == (8,) and (g > 0).all() and net.training and net[1].training
    # the same as the gradient of each sample alone, in eval mode, over the trainable parameters
    net.eval()
    for i in (0, 7):
        net.zero_grad()
        F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]).backward()
        norm = torch.cat([p.grad.flatten() for p in net.parameters() if p.requires_grad]).norm()
        assert g[i] == pytest.approx(float(norm), rel=1e-5)
    with pytest.raises(ValueError, match="at least one model"):
        scores.grand([], x, y)


def test_forgetting_conventions_by_hand():
    assert scores.forgetting(RECORD).tolist() == [1, 0, 2, 0, 0]
    assert scores.forgetting(RECORD, never_learned="zero").dtype == np.int64
    assert scores.forgetting(RECORD, never_learned="max").tolist() == [1, 4, 2, 0, 0]
    assert scores.forgetting(RECORD, never_learned="presentations").tolist() == [1, 4, 2, 0, 0]
    assert scores.forgetting(RECORD, never_learned=1000).tolist() == [1, 1000, 2, 0, 0]
    inf = scores.forgetting(RECORD, never_learned="inf")
    assert inf.dtype == np.float64 and inf.tolist() == [1, np.inf, 2, 0, 0]
    half = scores.forgetting(RECORD, never_learned=0.5)
    assert half.tolist() == [1, 0.5, 2, 0, 0]
    # the book's and Toneva's conventions agree with regutils.measures
    np.testing.assert_array_equal(scores.forgetting(RECORD, "max"), measures.forgetting_events(RECORD, "max"))
    runs = np.stack([RECORD, ~RECORD])  # (R, T, N) -> (R, N)
    assert scores.forgetting(runs, "max").tolist() == [[1, 4, 2, 0, 0], [2, 0, 1, 4, 1]]
    for bad in ("never", -1, float("nan"), True):
        with pytest.raises(ValueError, match="never_learned="):
            scores.forgetting(RECORD, never_learned=bad)


def test_first_learned_by_hand():
    first = scores.first_learned(RECORD)
    assert first.first_correct.tolist() == [2, 5, 1, 1, 3]
    assert first.learned_from.tolist() == [4, 5, 5, 1, 3]
    cases = np.array([[1, 0, 1, 1], [1, 1, 1, 0], [0, 1, 1, 1]], dtype=bool).T  # (T=4, N=3)
    result = scores.first_learned(cases)
    assert result.first_correct.tolist() == [1, 1, 2]
    assert result.learned_from.tolist() == [3, 5, 2]
    assert (result.learned_from >= result.first_correct).all()
    assert scores.first_learned(np.stack([RECORD, RECORD])).learned_from.shape == (2, 5)


def test_data_map_by_hand():
    probs = np.array([[0.2, 1.0], [0.4, 1.0], [0.6, 1.0]])
    correct = np.array([[0, 1], [0, 1], [1, 1]], dtype=bool)
    m = scores.data_map(probs, correct)
    np.testing.assert_allclose(m.confidence, [0.4, 1.0])
    np.testing.assert_allclose(m.variability, [math.sqrt(0.08 / 3), 0.0])
    np.testing.assert_allclose(m.correctness, [1 / 3, 1.0])
    with pytest.raises(ValueError, match="one shape"):
        scores.data_map(probs, correct[:2])
