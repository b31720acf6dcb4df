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


def test_critical_sample_ratio_on_a_seeded_share_is_that_shares_fraction():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(2, 5)), rng.normal(size=2)
    x = torch.from_numpy(rng.normal(size=(300, 5)))
    flags = sensitivity.critical_samples(linear(w, b), x, r=0.5, steps=5, step_size=0.25)
    chosen = np.sort(np.random.default_rng(7).choice(300, 40, replace=False))
    ratio = sensitivity.critical_sample_ratio(linear(w, b), x, r=0.5, steps=5, step_size=0.25, samples=40, seed=7)
    assert ratio == pytest.approx(flags[chosen].mean())
    assert sensitivity.critical_sample_ratio(linear(w, b), x, r=0.5, steps=5, step_size=0.25, samples=1000) \
        == pytest.approx(flags.mean())  # more samples than there are: all of them
    with pytest.raises(ValueError, match="samples"):
        sensitivity.critical_sample_ratio(linear(w, b), x, r=0.5, samples=0)


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


# --- per-class loss sensitivity


def closed_form_class_sensitivity(w, b, x, y, k):
    """G of a linear softmax model z = W x + b, from the hand-derived input gradient of grad Lbar_i . grad L(x)."""
    p = softmax(x @ w.T + b)
    r = p - np.eye(k)[y]  # dL/dz per sample; grad_W L = r x^T, grad_b L = r
    out = np.zeros((k, k))
    for i in range(k):
        vw, vb = r[y == i].T @ x[y == i] / (y == i).sum(), r[y == i].mean(0)  # grad of Lbar_i
        # s(x) = r^T (V_W x + V_b);  ds/dx = V_W^T r + W^T (diag(p) - p p^T) (V_W x + V_b)
        u = x @ vw.T + vb
        jac_u = p * u - p * (p * u).sum(1, keepdims=True)
        norms = np.abs(r @ vw + jac_u @ w).sum(1)
        out[i] = [norms[y == j].mean() for j in range(k)]
    return out


def test_class_sensitivity_matches_closed_form_of_linear_model():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    x, y = rng.normal(size=(30, 5)), np.arange(30) % 3
    got = sensitivity.class_sensitivity(linear(w, b), torch.from_numpy(x), torch.from_numpy(y), 3, batch_size=7)
    np.testing.assert_allclose(got, closed_form_class_sensitivity(w, b, x, y, 3), rtol=1e-10)


def change_of_class_loss(model, x, y, positions_i, sample):
    """grad_theta Lbar_i . grad_theta L(x_sample): first-order autograd only, one sample at a time."""
    params = list(model.parameters())
    mean_loss = torch.nn.functional.cross_entropy(model(x[positions_i]), y[positions_i])
    v = torch.autograd.grad(mean_loss, params)
    g = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[sample:sample + 1]), y[sample:sample + 1]),
                            params)
    return sum((a * c).sum() for a, c in zip(v, g)).item()


def test_class_sensitivity_matches_finite_differences_of_two_layer_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Tanh(),
                                torch.nn.Linear(6, 3)).double()
    model[1].running_mean.uniform_(-0.5, 0.5)
    model.train()  # the function must switch to eval mode
    x, y = torch.randn(12, 4, dtype=torch.float64), torch.arange(12) % 3
    got = sensitivity.class_sensitivity(model, x, y, 3, batch_size=5)
    model.eval()
    h, expected = 1e-6, np.zeros((3, 3))
    for i in range(3):
        positions_i = torch.nonzero(y == i).squeeze(1)
        for n in range(12):
            grad = []
            for d in range(4):  # central difference of the change in the input of sample n
                step = torch.zeros_like(x)
                step[n, d] = h
                # the moved copy of sample n is x' (at 12 + n); Lbar_i reads the unmoved originals
                plus = change_of_class_loss(model, torch.cat([x, x + step]), torch.cat([y, y]), positions_i, 12 + n)
                minus = change_of_class_loss(model, torch.cat([x, x - step]), torch.cat([y, y]), positions_i, 12 + n)
                grad.append((plus - minus) / (2 * h))
            expected[i, y[n]] += np.abs(grad).sum() / 4  # 4 samples per class
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_class_sensitivity_is_a_first_order_change_of_the_class_loss():
    # (Lbar_i(theta) - Lbar_i(theta - eps grad L(x'))) / eps -> grad Lbar_i . grad L(x') as eps -> 0
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    x, y = torch.randn(9, 4, dtype=torch.float64), torch.arange(9) % 3
    positions_0, eps = torch.nonzero(y == 0).squeeze(1), 1e-7
    params = list(model.parameters())
    g = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[4:5]), y[4:5]), params)
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(model(x[positions_0]), y[positions_0]).item()
        for p, d in zip(params, g):
            p -= eps * d
        after = torch.nn.functional.cross_entropy(model(x[positions_0]), y[positions_0]).item()
        for p, d in zip(params, g):
            p += eps * d
    assert (before - after) / eps == pytest.approx(change_of_class_loss(model, x, y, positions_0, 4), rel=1e-5)


def test_class_sensitivity_per_class_cap_is_a_seeded_subset():
    rng = np.random.default_rng(4)
    w, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    x, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    model, xt, yt = linear(w, b), torch.from_numpy(x), torch.from_numpy(y)
    a = sensitivity.class_sensitivity(model, xt, yt, 2, per_class=5, seed=7)
    np.testing.assert_array_equal(a, sensitivity.class_sensitivity(model, xt, yt, 2, per_class=5, seed=7))
    assert not np.allclose(a, sensitivity.class_sensitivity(model, xt, yt, 2, per_class=5, seed=8))
    np.testing.assert_allclose(sensitivity.class_sensitivity(model, xt, yt, 2, per_class=20),
                               closed_form_class_sensitivity(w, b, x, y, 2), rtol=1e-10)


def test_class_sensitivity_of_an_absent_class_is_nan():
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    x, y = rng.normal(size=(10, 4)), np.arange(10) % 2  # class 2 has no samples
    got = sensitivity.class_sensitivity(linear(w, b), torch.from_numpy(x), torch.from_numpy(y), 3)
    assert np.isnan(got[2]).all() and np.isnan(got[:, 2]).all() and np.isfinite(got[:2, :2]).all()
    assert got.dtype == np.float64 and got.shape == (3, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(y=torch.zeros(4, dtype=torch.long)), "y must have shape"),
    (dict(num_classes=0), "num_classes=0"),
    (dict(num_classes=2.0), "num_classes=2.0"),
    (dict(y=torch.tensor([0, 1, 2])), "labels outside 0..1"),
    (dict(per_class=0), "per_class=0"),
    (dict(batch_size=0), "batch_size=0"),
])
def test_class_sensitivity_rejects_bad_parameters(kwargs, message):
    args = dict(x=torch.zeros(3, 2), y=torch.tensor([0, 1, 0]), num_classes=2) | kwargs
    with pytest.raises(ValueError, match=message):
        sensitivity.class_sensitivity(torch.nn.Linear(2, 2), **args)


def test_off_diagonal_share_by_hand():
    assert sensitivity.off_diagonal_share([[4.0, 1.0], [3.0, 2.0]]) == pytest.approx(4.0 / 10.0)
    assert sensitivity.off_diagonal_share(np.ones((4, 4))) == pytest.approx(3 / 4)  # no class stands out
    assert sensitivity.off_diagonal_share(np.diag([1.0, 2.0, 3.0])) == 0.0  # each class reacts to its own only
    nan = float("nan")
    assert sensitivity.off_diagonal_share([[2.0, 1.0, nan], [1.0, 4.0, nan], [nan, nan, nan]]) == pytest.approx(0.25)
    assert np.isnan(sensitivity.off_diagonal_share(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="matrix must be square"):
        sensitivity.off_diagonal_share(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        sensitivity.off_diagonal_share([[1.0, -1.0], [0.0, 1.0]])


def test_off_diagonal_share_orders_shared_above_class_specific_sensitivity():
    # a class that also reacts to the other classes' samples shares more than one that reacts to its own
    specific = np.eye(3) * 5 + 1
    shared = np.eye(3) * 5 + 3
    assert sensitivity.off_diagonal_share(shared) > sensitivity.off_diagonal_share(specific)
