"""The sample explorer on a tiny hand-made trace: its data, images, widgets and self-contained HTML."""
import base64
import io
import re
from types import SimpleNamespace

import numpy as np
import pytest
from bokeh.models import BooleanFilter, Button, CheckboxGroup, CustomJS
from bokeh.plotting import figure
from PIL import Image

from regutils import explorer
from regutils.trace import Trace

# per sample, per run: its correctness at epochs 1..3
TRAIN = [[[1, 1, 1], [1, 1, 1]],   # learned at once: CBTL 3, no event
         [[1, 0, 1], [1, 0, 0]],   # CBTL 2 and 1 -> 1.5; forgotten once in each run -> 1
         [[0, 0, 0], [0, 1, 0]]]   # CBTL 0 and 1 -> 0.5; events 0 and 1 -> 0.5
TEST = [[[0, 1, 1], [1, 1, 1]],    # CBGL 2 and 3 -> 2.5; no event
        [[1, 0, 1], [1, 0, 0]]]    # CBGL 2 and 1 -> 1.5; events 1 and 1 -> 1
CLASSES = ["cat", "dog, big", "ant"]


def record(per_sample) -> np.ndarray:
    """Per-sample lists of runs of epochs -> bool (R, T, N)."""
    return np.transpose(np.array(per_sample, bool), (1, 2, 0))


def tiny():
    train, test = record(TRAIN), record(TEST)
    runs = Trace(train_correct=train, test_correct=test, train_prob=train.astype(np.float16),
                 test_prob=test.astype(np.float16), batch_correct=train, batch_step=np.zeros(train.shape, np.int32),
                 y_train=np.array([0, 1, 2]), y_test=np.array([2, 1]), index_train=np.array([10, 11, 12]),
                 index_test=np.array([20, 21]), noisy_train=np.zeros(3, bool))
    rng = np.random.default_rng(0)
    data = SimpleNamespace(images_train=rng.integers(0, 256, (3, 5, 6, 3), dtype=np.uint8),
                           images_test=rng.integers(0, 256, (2, 5, 6, 3), dtype=np.uint8), classes=CLASSES)
    return runs, data


@pytest.fixture(scope="module")
def layout():
    """The explorer of :func:`tiny` at its defaults (building Bokeh models takes a while: once)."""
    return explorer.sample_explorer(*tiny())


def source(layout, split):
    return layout.select_one({"name": f"{split}-points"}).data_source


def decode(uri) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def test_one_row_per_sample_with_its_run_averaged_measures(layout):
    train, test = source(layout, "train").data, source(layout, "test").data
    assert np.array_equal(train["count"], [3, 1.5, 0.5]) and np.array_equal(train["events"], [0, 1, 0.5])
    assert np.array_equal(test["count"], [2.5, 1.5]) and np.array_equal(test["events"], [0, 1])
    assert list(train["dataset_index"]) == [10, 11, 12] and list(test["position"]) == [0, 1]
    assert list(train["class_name"]) == CLASSES and list(test["class_name"]) == ["ant", "dog, big"]
    # the paper's radius: axis ranges over 30; no two samples that close, so each counts only itself
    radius = np.hypot(2.5 / 30, 1 / 30)
    assert np.allclose(train["density"], 1 / (np.pi * radius**2))


def test_points_are_jittered_within_the_grid_of_run_averages_and_seeded():
    runs, data = tiny()
    a, b, c, still = (source(explorer.sample_explorer(runs, data, seed=seed, jitter=jitter), "train").data
                      for seed, jitter in ((3, 0.3), (3, 0.3), (4, 0.3), (3, 0.0)))
    shift = np.abs(a["x"] - a["count"])
    assert np.all(shift <= 0.3 / 2) and np.all(shift > 0)  # two runs: averages lie on halves
    assert np.array_equal(a["x"], b["x"]) and not np.array_equal(a["x"], c["x"])
    assert np.array_equal(still["x"], still["count"]) and np.array_equal(still["y"], [0, 1, 0.5])


def test_thumbnails_are_the_images_themselves_and_strips_the_records(layout):
    _, data = tiny()
    for split, images in (("train", data.images_train), ("test", data.images_test)):
        columns = source(layout, split).data
        for k, uri in enumerate(columns["thumb"]):
            assert np.array_equal(decode(uri), images[k])  # lossless, at the image's own 5 x 6 size
        correct = record(TRAIN if split == "train" else TEST)
        for k, uri in enumerate(columns["strip"]):
            strip = decode(uri)
            assert strip.shape == (2, 3, 3)  # runs x epochs
            assert np.array_equal(strip, explorer.STRIP_COLOURS[correct[:, :, k].astype(int)])


def test_grey_and_float_images_encode_too():
    grey = np.linspace(0, 1, 2 * 4 * 3).reshape(2, 4, 3, 1)
    decoded = decode(explorer.png_uris(explorer.as_uint8(grey))[1])
    assert decoded.shape == (4, 3, 3) and np.array_equal(decoded[..., 0], np.round(grey[1, ..., 0] * 255))
    with pytest.raises(ValueError, match="uint8 or floats in \\[0, 1\\]"):
        explorer.as_uint8(grey * 2)
    with pytest.raises(ValueError, match="shape"):
        explorer.as_uint8(np.zeros((2, 4, 3, 2), np.uint8))


def test_the_class_filter_and_the_csv_download_are_wired(layout):
    checkbox = layout.select_one({"type": CheckboxGroup})
    assert checkbox.labels == CLASSES and checkbox.active == [0, 1, 2]
    [on_change] = checkbox.js_property_callbacks["change:active"]
    for split, n in (("train", 3), ("test", 2)):
        renderer = layout.select_one({"name": f"{split}-points"})
        assert isinstance(renderer.view.filter, BooleanFilter) and renderer.view.filter.booleans == [True] * n
        assert (renderer.data_source, renderer.view.filter) in [tuple(p) for p in on_change.args["pairs"]]
    [on_click] = layout.select_one({"type": Button}).js_event_callbacks["button_click"]
    assert isinstance(on_click, CustomJS) and "Blob" in on_click.code and "download" in on_click.code
    assert [p[0] for p in on_click.args["planes"]] == ["train", "test"]
    assert on_click.args["columns"] == list(explorer.CSV_COLUMNS)


def test_the_html_carries_bokehjs_and_loads_nothing_from_outside(layout):
    page = explorer.embed(layout)
    html = page._repr_html_()  # what Jupyter, and so the book, shows
    assert html == page.html and html.startswith("<script")
    assert "cdn.bokeh.org" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)
    assert len(html) > 1_000_000 and "Bokeh" in html  # BokehJS itself, inline
    assert re.search(r'<div id="[\w-]+" data-root-id="[\w-]+"', html)  # where the layout goes in the page


def test_stratified_positions_keep_each_class_share():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    chosen = explorer.stratified_positions(labels, 100, seed=1)
    assert np.all(np.diff(chosen) > 0) and np.array_equal(np.bincount(labels[chosen]), [60, 30, 10])
    assert np.array_equal(chosen, explorer.stratified_positions(labels, 100, seed=1))
    assert not np.array_equal(chosen, explorer.stratified_positions(labels, 100, seed=2))
    assert np.array_equal(explorer.stratified_positions(labels, None), np.arange(1000))
    assert np.array_equal(explorer.stratified_positions(labels, 5000), np.arange(1000))


def test_a_subsampled_plane_says_so_and_keeps_the_whole_plane_density():
    runs, data = tiny()
    layout = explorer.sample_explorer(runs, data, max_points=2)
    train = source(layout, "train").data
    assert len(train["thumb"]) == len(train["x"]) == 2
    assert layout.select_one({"name": "train-points"}).view.filter.booleans == [True, True]
    titles = [f.title.text for f in layout.select({"type": figure}) if f.title is not None]
    assert "training set: 2 of 3 samples" in titles and "test set: 2 samples" in titles
    assert np.allclose(train["density"], 1 / (np.pi * np.hypot(2.5 / 30, 1 / 30) ** 2))


@pytest.mark.parametrize(("change", "message"), [
    ({"max_points": 0}, "max_points=0"), ({"jitter": 0.5}, "jitter=0.5"), ({"seed": -1}, "seed=-1")])
def test_bad_arguments_raise_value_errors(change, message):
    runs, data = tiny()
    with pytest.raises(ValueError, match=message):
        explorer.sample_explorer(runs, data, **change)


def test_images_of_other_data_are_refused():
    runs, data = tiny()
    data.images_test = data.images_test[:1]
    with pytest.raises(ValueError, match="1 test images but the runs record 2 test samples"):
        explorer.sample_explorer(runs, data)
