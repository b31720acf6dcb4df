import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from regutils.data import DataConfig, DataError, augment, load


@pytest.fixture(scope="module")
def digits():
    return load(DataConfig("digits"))


@pytest.fixture(scope="module")
def source():
    return load_digits()


def assert_stratified(y_subset, y_full, size):
    """Every class holds its proportional share of ``size`` samples, within one sample."""
    k = y_full.max() + 1
    expected = np.bincount(y_full, minlength=k) * size / len(y_full)
    assert np.abs(np.bincount(y_subset, minlength=k) - expected).max() <= 1


# --- digits


def test_digits_split_sizes_and_stratification(digits, source):
    assert digits.x_train.shape == (1347, 1, 8, 8) and digits.x_test.shape == (450, 1, 8, 8)
    assert digits.num_classes == 10 and digits.in_channels == 1
    assert_stratified(digits.y_train.numpy(), source.target, 1347)
    assert_stratified(digits.y_test.numpy(), source.target, 450)


def test_digits_indices_are_rows_of_load_digits(digits, source):
    i_tr, i_te = digits.index_train, digits.index_test
    assert np.intersect1d(i_tr, i_te).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([i_tr, i_te])), np.arange(1797))
    np.testing.assert_array_equal(digits.y_train.numpy(), source.target[i_tr])
    np.testing.assert_array_equal(digits.y_test.numpy(), source.target[i_te])
    np.testing.assert_array_equal(digits.images_test, np.round(source.images[i_te] * 255 / 16))


def test_digits_are_stable_across_calls(digits):
    again = load(DataConfig("digits"))
    np.testing.assert_array_equal(again.index_train, digits.index_train)
    assert torch.equal(again.x_train, digits.x_train) and again.fingerprint == digits.fingerprint


def test_normalized_with_training_statistics(digits):
    assert abs(digits.x_train.mean().item()) < 1e-5
    assert digits.x_train.std().item() == pytest.approx(1, abs=1e-3)
    assert digits.augment is False and not digits.noisy_train.any()


def test_resize_to_architecture_side():
    data = load(DataConfig("digits", train_size=50, test_size=20), image_size=32)
    assert data.x_train.shape == (50, 1, 32, 32) and data.images_train.shape == (50, 8, 8)


# --- label noise, random inputs, subsets


@pytest.mark.parametrize("fraction", [0.0, 0.13, 0.5, 1.0])
def test_label_noise_changes_an_exact_count(digits, fraction):
    noisy = load(DataConfig("digits", label_noise=fraction, data_seed=3))
    changed = noisy.y_train.numpy() != digits.y_train.numpy()
    assert changed.sum() == round(fraction * 1347)  # and every chosen label really differs
    np.testing.assert_array_equal(changed, noisy.noisy_train)
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() <= 9
    assert torch.equal(noisy.y_test, digits.y_test) and torch.equal(noisy.x_train, digits.x_train)


def test_label_noise_is_seed_reproducible(digits):
    a, b = (load(DataConfig("digits", label_noise=0.2, data_seed=5)) for _ in range(2))
    c = load(DataConfig("digits", label_noise=0.2, data_seed=6))
    assert torch.equal(a.y_train, b.y_train) and a.fingerprint == b.fingerprint
    assert not np.array_equal(a.noisy_train, c.noisy_train) and a.fingerprint != c.fingerprint
    assert a.fingerprint != digits.fingerprint


def test_random_inputs_are_standard_gaussian(digits):
    data = load(DataConfig("digits", random_inputs=True))
    x = data.x_train.numpy().ravel()
    assert data.x_train.shape == digits.x_train.shape
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert abs(np.mean(np.abs(x) < 1) - 0.6827) < 0.01 and abs(np.mean(np.abs(x) < 2) - 0.9545) < 0.01
    assert torch.equal(data.x_test, digits.x_test) and torch.equal(data.y_train, digits.y_train)


def test_subsets_are_stratified_exact_and_seeded(digits):
    sub = load(DataConfig("digits", train_size=300, test_size=101, data_seed=1))
    assert len(sub.y_train) == len(sub.index_train) == sub.x_train.shape[0] == 300
    assert len(sub.y_test) == sub.x_test.shape[0] == 101
    assert_stratified(sub.y_train.numpy(), digits.y_train.numpy(), 300)
    assert_stratified(sub.y_test.numpy(), digits.y_test.numpy(), 101)
    pos = np.searchsorted(digits.index_train, sub.index_train)  # rows of the full split
    np.testing.assert_array_equal(digits.index_train[pos], sub.index_train)
    np.testing.assert_array_equal(sub.images_train, digits.images_train[pos])
    np.testing.assert_array_equal(sub.y_train, digits.y_train[pos])
    again = load(DataConfig("digits", train_size=300, test_size=101, data_seed=1))
    other = load(DataConfig("digits", train_size=300, test_size=101, data_seed=2))
    np.testing.assert_array_equal(again.index_train, sub.index_train)
    assert not np.array_equal(other.index_train, sub.index_train)


# --- augmentation


def crops_and_flips(x, pad=4):
    """All (2 * pad + 1)² crops of the zero-padded images, unflipped and flipped: (n, 2, 81, C, H, W)."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    crops = torch.stack([padded[:, :, r:r + h, s:s + w] for r in range(2 * pad + 1) for s in range(2 * pad + 1)], 1)
    return torch.stack([crops, crops.flip(-1)], 1)


def test_augment_is_a_crop_of_the_padded_image_and_flips_about_half():
    x = torch.rand(400, 3, 8, 8) + 0.5  # positive values: padding zeros cannot pass for image
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    matches = (crops_and_flips(x) == out[:, None, None]).flatten(3).all(-1)  # (n, 2, 81)
    assert (matches.sum((1, 2)) == 1).all()  # each output is exactly one crop, flipped or not
    flipped, offset = matches[:, 1].any(1), matches.flatten(1).int().argmax(1) % 81
    assert 0.4 < flipped.float().mean() < 0.6
    assert len((offset // 9).unique()) == len((offset % 9).unique()) == 9  # every shift -4..4 occurs
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(0)))


def test_augment_matches_a_loop_reference():
    x = torch.randn(5, 2, 6, 7)
    gen = torch.Generator().manual_seed(1)
    draws = torch.Generator().set_state(gen.get_state())
    out = augment(x, gen)
    shift = torch.randint(0, 9, (2, 5), generator=draws)
    flip = torch.rand(5, generator=draws) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(5):
        crop = padded[i, :, shift[0, i]:shift[0, i] + 6, shift[1, i]:shift[1, i] + 7]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)


def test_augment_default_on_for_colour_data_off_for_digits(tmp_path):
    path = write_npz(tmp_path / "d.npz", np.zeros((6, 4, 4, 3), np.uint8), np.arange(6) % 2,
                     np.zeros((4, 4, 4, 3), np.uint8), np.arange(4) % 2)
    assert load(DataConfig("npz", path=str(path))).augment is True
    assert load(DataConfig("npz", path=str(path), augment=False)).augment is False
    assert load(DataConfig("digits", augment=True)).augment is True


# --- npz files


def write_npz(path, x_train, y_train, x_test, y_test, **extra):
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
    return path


@pytest.fixture
def colour_images():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (12, 5, 5, 3), dtype=np.uint8), np.arange(12) % 3,
            rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8), np.arange(6) % 3)


def test_npz_colour_round_trip_keeps_indices(tmp_path, colour_images):
    x_tr, y_tr, x_te, y_te = colour_images
    index_train, index_test = np.arange(100, 112)[::-1], np.arange(6) * 7
    path = write_npz(tmp_path / "c.npz", x_tr, y_tr, x_te, y_te, index_train=index_train,
                     index_test=index_test, classes=np.array(["a", "b", "c"]))
    data = load(DataConfig("npz", path=str(path)))
    np.testing.assert_array_equal(data.images_train, x_tr)
    np.testing.assert_array_equal(data.index_train, index_train)
    np.testing.assert_array_equal(data.index_test, index_test)
    assert data.classes == ["a", "b", "c"] and data.x_train.shape == (12, 3, 5, 5)
    np.testing.assert_array_equal(data.y_train.numpy(), y_tr)
    # per-channel normalization with the training statistics, channel order kept
    scaled = x_tr.transpose(0, 3, 1, 2) / 255
    mean, std = scaled.mean((0, 2, 3), keepdims=True), scaled.std((0, 2, 3), keepdims=True, ddof=1)
    np.testing.assert_allclose(data.x_train.numpy(), (scaled - mean) / std, atol=1e-5)
    np.testing.assert_allclose(data.x_test.numpy(), (x_te.transpose(0, 3, 1, 2) / 255 - mean) / std, atol=1e-5)


def test_npz_grey_and_float_inputs(tmp_path, colour_images):
    x_tr, y_tr, x_te, y_te = colour_images
    grey = load(DataConfig("npz", path=str(write_npz(tmp_path / "g.npz", x_tr[..., 0], y_tr, x_te[..., 0], y_te))))
    assert grey.x_train.shape == (12, 1, 5, 5) and grey.classes == ["0", "1", "2"]
    np.testing.assert_array_equal(grey.index_train, np.arange(12))
    as_float = write_npz(tmp_path / "f.npz", x_tr / 255, y_tr, x_te / 255, y_te)
    data = load(DataConfig("npz", path=str(as_float)))
    np.testing.assert_array_equal(data.images_train, x_tr)
    as_uint8 = write_npz(tmp_path / "u.npz", *colour_images)
    assert data.fingerprint == load(DataConfig("npz", path=str(as_uint8))).fingerprint


def test_config_key_leaves_out_the_location():
    a = DataConfig("npz", path="/one/place.npz", download=True)
    b = DataConfig("npz", path="/another/place.npz")
    assert a.key() == b.key() and "path" not in a.key()
    assert DataConfig("digits", data_seed=1).key() != DataConfig("digits").key()


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)
    with pytest.raises(DataError, match="path="):
        load(DataConfig("npz"))


def test_fingerprint_names_the_data_not_the_float_rounding_of_its_resize():
    # bilinear resizing rounds differently with the number of threads: the run key must not follow it
    before = torch.get_num_threads()
    try:
        fingerprints = set()
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fingerprints.add(load(DataConfig("digits"), image_size=32).fingerprint)
    finally:
        torch.set_num_threads(before)
    assert len(fingerprints) == 1
    assert load(DataConfig("digits"), image_size=28).fingerprint not in fingerprints  # the size is part of it
