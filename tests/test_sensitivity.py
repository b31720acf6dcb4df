import numpy as np
import pytest
import torch

from regutils import sensitivity


def linear(w, b):
    model = torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w))
        model.bias.copy_(torch.from_numpy(b))
    return model


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_loss_sensitivity_matches_hand_gradient_of_linear_model():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    x, y = rng.normal(size=(9, 6)), rng.integers(0, 4, 9)
    # dL/dx = W^T (softmax(Wx + b) - onehot(y)) for the cross-entropy of one sample
    grad = (softmax(x @ w.T + b) - np.eye(4)[y]) @ w
    expected = np.abs(grad).sum(1)
    got = sensitivity.loss_sensitivity(linear(w, b), torch.from_numpy(x), torch.from_numpy(y), batch_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_loss_sensitivity_does_not_depend_on_batching_and_handles_images():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 4 * 4, 5))
    model.train()  # the function must switch to eval mode, else batch statistics couple the samples
    x, y = torch.randn(10, 1, 6, 6), torch.randint(0, 5, (10,))
    a = sensitivity.loss_sensitivity(model, x, y, batch_size=1)
    b = sensitivity.loss_sensitivity(model, x, y, batch_size=7)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert a.shape == (10,) and (a > 0).all()


def test_critical_samples_match_closed_form_margin_of_linear_model():
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(2, 5)), rng.normal(size=2)
    x = rng.normal(size=(400, 5))
    z = x @ w.T + b
    # two classes: the smallest L-inf perturbation that flips is |margin| / ||w_0 - w_1||_1
    needed = np.abs(z[:, 0] - z[:, 1]) / np.abs(w[0] - w[1]).sum()
    r = float(np.median(needed))
    clear = np.abs(needed - r) > 0.05 * r
    got = sensitivity.critical_samples(linear(w, b), torch.from_numpy(x), r=r, steps=5, step_size=r / 2)
    np.testing.assert_array_equal(got[clear], (needed < r)[clear])
    ratio = sensitivity.critical_sample_ratio(linear(w, b), torch.from_numpy(x), r=r, steps=5, step_size=r / 2)
    assert ratio == pytest.approx(got.mean())
    assert 0.4 < ratio < 0.6  # r is the median of the needed radii


def test_critical_samples_stay_inside_the_ball():
    # a radius far below every needed perturbation flags nothing, a large one flags everything
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(3, 4)), np.zeros(3)
    x = torch.from_numpy(rng.normal(size=(50, 4)))
    assert not sensitivity.critical_samples(linear(w, b), x, r=1e-9, steps=3, step_size=1.0).any()
    assert sensitivity.critical_samples(linear(w, b), x, r=100.0, steps=3).all()


@pytest.mark.parametrize("kwargs", [dict(r=0.0), dict(r=0.1, steps=0), dict(r=0.1, step_size=-1.0),
                                    dict(r=0.1, batch_size=0)])
def test_critical_samples_reject_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        sensitivity.critical_samples(torch.nn.Linear(2, 2), torch.zeros(3, 2), **kwargs)


def test_loss_sensitivity_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="y must have shape"):
        sensitivity.loss_sensitivity(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))


def test_top_share_by_hand():
    assert sensitivity.top_share([1.0] * 10, 0.1) == pytest.approx(0.1)
    assert sensitivity.top_share([5.0, 1.0, 1.0, 3.0], 0.5) == pytest.approx(0.8)
    assert sensitivity.top_share([0.0, 0.0], 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="top"):
        sensitivity.top_share([1.0], 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        sensitivity.top_share([-1.0, 2.0])
