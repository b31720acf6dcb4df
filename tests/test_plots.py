import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402

from regutils import plots  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    fig.canvas.draw()  # every drawing must also render
    plt.close(fig)


def reference_group(measure, events):
    groups = {}
    for m, e in zip(measure.tolist(), events.tolist()):
        groups.setdefault(m, []).append(e)
    values = sorted(groups)
    return (values, [sum(groups[v]) / len(groups[v]) for v in values],
            [min(groups[v]) for v in values], [max(groups[v]) for v in values])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=60))
def test_mean_and_range_by_value_matches_loop(pairs):
    measure, events = np.array(pairs).T
    got = plots.mean_and_range_by_value(measure, events)
    for a, b in zip(got, reference_group(measure, events)):
        np.testing.assert_allclose(a, b)


def test_use_style_sets_palette():
    with matplotlib.rc_context():
        plots.use_style()
        colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        assert [c.upper() for c in colors] == list(plots.OKABE_ITO)
        assert matplotlib.rcParams["image.cmap"] == "viridis"


def test_density_scatter_sorted_by_density(ax):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 300))
    density = rng.random(300) + 0.1
    points = plots.density_scatter(ax, x, y, density, rays_deg=30, center=(0.0, 0.0))
    order = np.argsort(density)
    np.testing.assert_array_equal(points.get_array(), density[order])
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([x, y])[order])
    assert isinstance(points.norm, matplotlib.colors.LogNorm)
    assert len(ax.collections) == 1 and len(ax.lines) == 12  # 360 / 30 rays
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    assert xlim[0] <= x.min() and x.max() <= xlim[1] and ylim[0] <= y.min() and y.max() <= ylim[1]
    # every ray starts at the centre and leaves the visible box
    for line in ax.lines:
        (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
        assert (x0, y0) == (0.0, 0.0)
        assert not (xlim[0] <= x1 <= xlim[1] and ylim[0] <= y1 <= ylim[1])
    colorbar = plots.add_colorbar(ax, points, label="density")
    assert colorbar.ax.get_ylabel() == "density"


def test_density_scatter_rejects_zero_density_in_log(ax):
    with pytest.raises(ValueError, match="log=False"):
        plots.density_scatter(ax, [0, 1], [0, 1], [0.0, 1.0])
    points = plots.density_scatter(ax, [0, 1], [0, 1], [0.0, 1.0], log=False)
    assert not isinstance(points.norm, matplotlib.colors.LogNorm)


def test_histogram_1d_integer_bins_and_normalization(ax):
    train = np.array([0, 1, 1, 2, 2, 2, 5])
    test = np.array([1, 3, 3, 4])
    containers = plots.histogram_1d(ax, train, test)
    assert len(containers) == 2 and len(ax.patches) == 2 * 6  # bins for 0..5
    for bars, values in zip(containers, (train, test)):
        lefts = np.array([p.get_x() for p in bars])
        widths = np.array([p.get_width() for p in bars])
        heights = np.array([p.get_height() for p in bars])
        np.testing.assert_allclose(lefts, np.arange(6) - 0.5)  # bins centred on integers
        np.testing.assert_allclose(heights, np.bincount(values, minlength=6) / values.size)
        assert (heights * widths).sum() == pytest.approx(1.0)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["train", "test"]


def test_histogram_1d_float_data(ax):
    values = np.random.default_rng(1).normal(size=500)
    (bars,) = plots.histogram_1d(ax, values)
    heights = np.array([p.get_height() for p in bars])
    widths = np.array([p.get_width() for p in bars])
    assert (heights * widths).sum() == pytest.approx(1.0)
    assert len(bars) == len(np.histogram_bin_edges(values, bins="auto")) - 1


def test_events_vs_measure_band_matches_loop(ax):
    rng = np.random.default_rng(2)
    measure = rng.integers(0, 10, 400)
    events = rng.integers(0, 5, 400) + measure % 3
    line, band = plots.events_vs_measure(ax, measure, events, label="train")
    values, mean, low, high = (np.array(a) for a in reference_group(measure, events))
    np.testing.assert_allclose(line.get_xdata(), values)
    np.testing.assert_allclose(line.get_ydata(), mean)
    vertices = band.get_paths()[0].vertices
    for v, lo, hi in zip(values, low, high):
        at_v = vertices[np.isclose(vertices[:, 0], v), 1]
        assert np.isclose(at_v, lo).any() and np.isclose(at_v, hi).any()
        assert at_v.min() == pytest.approx(lo) and at_v.max() == pytest.approx(hi)
    assert band.get_facecolor()[0][:3] == pytest.approx(matplotlib.colors.to_rgb(line.get_color()))


def test_curve_with_band(ax):
    x = np.arange(5.0)
    line, band = plots.curve_with_band(ax, x, x, x - 1, x + 2, label="m", color="#009E73")
    assert len(ax.lines) == 1 and len(ax.collections) == 1
    assert line.get_label() == "m" and line.get_color() == "#009E73"
    vertices = band.get_paths()[0].vertices
    assert vertices[:, 1].min() == -1 and vertices[:, 1].max() == 6


@pytest.mark.parametrize("shape,dtype", [((5, 8, 6), np.float64), ((5, 8, 6, 3), np.uint8),
                                         ((5, 8, 6, 1), np.uint8)])
@pytest.mark.parametrize("titles", [None, list("abcde")])
def test_image_grid_on_axes_tiles_images(ax, shape, dtype, titles):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, shape).astype(dtype)
    if dtype == np.float64:
        images /= 255.0
    (image,) = plots.image_grid(ax, images, titles=titles, ncols=3, pad=2)
    canvas = np.asarray(image.get_array())
    unit = images / 255.0 if dtype == np.uint8 else images
    unit = unit[..., 0] if unit.ndim == 4 and unit.shape[-1] == 1 else unit
    # rows 2 px apart, or 2 + ceil(8 / 3) = 5 px with a title band (also above the first row)
    top, row_step = (0, 10) if titles is None else (3, 13)
    assert canvas.shape[:2] == (top + row_step + 8, 3 * 6 + 2 * 2)
    covered = np.zeros(canvas.shape[:2], dtype=bool)
    for k in range(5):  # tile k sits at row k // 3, column k % 3
        r, c = divmod(k, 3)
        rows, cols = slice(top + r * row_step, top + r * row_step + 8), slice(c * 8, c * 8 + 6)
        np.testing.assert_allclose(canvas[rows, cols], unit[k])
        covered[rows, cols] = True
    np.testing.assert_allclose(canvas[~covered], 1.0)  # white everywhere else
    assert (image.get_cmap().name == "gray") == (unit.ndim == 3)
    assert [t.get_text() for t in ax.texts] == ([] if titles is None else titles)
    for k, text in enumerate(ax.texts):  # each title just above its tile
        r, c = divmod(k, 3)
        assert text.get_position() == (c * 8 + 3, top + r * row_step - 1)


def test_image_grid_on_figure():
    fig = plt.figure()
    images = np.random.default_rng(4).random((5, 4, 4, 3))
    drawn = plots.image_grid(fig, images, titles=[f"#{i}" for i in range(5)], ncols=2)
    assert len(drawn) == 5 and len(fig.axes) == 6  # 3 rows x 2 columns, last one blank
    np.testing.assert_allclose(drawn[3].get_array(), images[3])
    assert [ax.get_title() for ax in fig.axes[:5]] == [f"#{i}" for i in range(5)]
    fig.canvas.draw()
    plt.close(fig)


def test_image_grid_rejects_out_of_range_floats(ax):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.image_grid(ax, np.full((2, 3, 3), 2.0))


def test_images_at_positions(ax):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 20)) * 10
    images = rng.integers(0, 256, (20, 8, 8)).astype(np.uint8)
    boxes = plots.images_at_positions(ax, x, y, images, picks=[2, 7, 11], zoom=2)
    assert len(boxes) == 3 and all(isinstance(b, AnnotationBbox) for b in boxes)
    assert [b.xy for b in boxes] == [(x[p], y[p]) for p in (2, 7, 11)]
    np.testing.assert_allclose(boxes[1].offsetbox.get_data(), images[7] / 255.0)
    xlim = ax.get_xlim()
    assert xlim[0] <= x[[2, 7, 11]].min() and x[[2, 7, 11]].max() <= xlim[1]


def test_correlation_heatmap(ax):
    matrix = np.array([[1.0, 0.25, -0.5], [0.25, 1.0, 0.75], [-0.5, 0.75, 1.0]])
    image = plots.correlation_heatmap(ax, matrix, ["a", "b", "c"], vmin=-1)
    np.testing.assert_array_equal(image.get_array(), matrix)
    assert image.get_clim() == (-1, 1)
    assert [t.get_text() for t in ax.texts] == [format(v, ".2f") for v in matrix.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    # text colour contrasts with the cell: white on the darkest cell (-0.5), black on 1.0
    by_text = {t.get_text(): t.get_color() for t in ax.texts}
    assert by_text["-0.50"] == "white" and by_text["1.00"] == "black"
    plain = plt.figure().add_subplot()
    plots.correlation_heatmap(plain, matrix, ["a", "b", "c"], annotate=False)
    assert len(plain.texts) == 0
    with pytest.raises(ValueError, match="labels"):
        plots.correlation_heatmap(plain, matrix, ["a", "b"])
    plt.close(plain.figure)


def test_run_raster_marks_each_event(ax):
    correct = np.array([[0, 1, 0, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]], dtype=bool)  # (R=3, T=5)
    image, crosses = plots.run_raster(ax, correct)
    # events at epochs 3 and 5 of run 1 and epoch 4 of run 3: (epoch, run) positions
    np.testing.assert_array_equal(crosses.get_offsets(), [[3, 1], [5, 1], [4, 3]])
    np.testing.assert_array_equal(image.get_array(), correct.astype(float))
    assert image.get_extent() == [0.5, 5.5, 3.5, 0.5]


def test_run_raster_needs_runs_by_epochs(ax):
    with pytest.raises(ValueError, match="runs, epochs"):
        plots.run_raster(ax, np.zeros(5, dtype=bool))


def test_frame_by_class_colours_follow_the_class():
    images = np.full((3, 4, 5), 128, dtype=np.uint8)  # gray images
    framed = plots.frame_by_class(images, np.array([2, 7, 2]), 2, width=1)
    assert framed.shape == (3, 6, 7, 3)
    for k, expected in enumerate([plots.SAME_CLASS_FRAME, plots.OTHER_CLASS_FRAME, plots.SAME_CLASS_FRAME]):
        border = np.concatenate([framed[k, 0], framed[k, -1], framed[k, :, 0], framed[k, :, -1]])
        np.testing.assert_allclose(border, np.tile(expected, (border.shape[0], 1)))
        np.testing.assert_allclose(framed[k, 1:-1, 1:-1], 128 / 255)  # the image inside, untouched
    assert plots.SAME_CLASS_FRAME[1] > plots.SAME_CLASS_FRAME[0]  # green
    assert plots.OTHER_CLASS_FRAME[0] > plots.OTHER_CLASS_FRAME[1]  # red
    with pytest.raises(ValueError, match="labels"):
        plots.frame_by_class(images, np.array([1, 2]), 2)


def test_sync_grid_draws_the_test_sample_first(ax):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    drawn = plots.sync_grid(ax, train[0], train, np.array([1, 0, 1, 1, 0]), 1, ncols=3)  # 8 px: width 1
    canvas = drawn[0].get_array()
    np.testing.assert_allclose(canvas[0, 0], plots.TEST_SAMPLE_FRAME)  # the test sample's frame
    np.testing.assert_allclose(canvas[0, 10 + 2], plots.SAME_CLASS_FRAME)  # second tile: class 1
    np.testing.assert_allclose(canvas[0, 2 * (10 + 2)], plots.OTHER_CLASS_FRAME)  # third: class 0


def test_representations_draw_test_above_train():
    rng = np.random.default_rng(0)
    groups = {g: {"CBTL": rng.integers(0, 9, 20) * 1.0, "forgetting": rng.integers(0, 3, 20) * 1.0,
                  "train density": rng.uniform(1, 2, 20), "CBGL": rng.integers(0, 9, 12) * 1.0,
                  "mal-generalizing": rng.integers(0, 3, 12) * 1.0, "test density": rng.uniform(1, 2, 12)}
              for g in ("sgd", "adamax")}
    fig, axes = plt.subplots(2, 2)
    drawn = plots.representations(axes, groups)
    for col, g in enumerate(groups):
        top, bottom = drawn[0, col], drawn[1, col]
        assert len(top.get_offsets()) == 12 and len(bottom.get_offsets()) == 20  # test on top
        order = np.argsort(groups[g]["train density"], kind="stable")
        np.testing.assert_array_equal(bottom.get_offsets()[:, 0], groups[g]["CBTL"][order])
        assert axes[0, col].get_title() == g and axes[1, col].get_xlabel() == "CBTL"
    fig.canvas.draw()
    with pytest.raises(ValueError, match="axes"):
        plots.representations(axes[:, :1], groups)
    plt.close(fig)


def test_smallest_text_counts_only_the_text_a_figure_draws():
    fig, (a, b) = plt.subplots(1, 2)
    a.set_title("title", fontsize=14)
    a.plot([0, 1], label="line")
    a.legend(fontsize=11)
    a.tick_params(labelsize=12)
    a.text(0.5, 0.5, "hidden", fontsize=3).set_visible(False)
    b.tick_params(labelsize=2)
    b.set_axis_off()  # its tiny tick labels are not drawn
    assert plots.smallest_text_pt(fig) == 11
    a.set_xlabel("small", fontsize=7)
    assert plots.smallest_text_pt(fig) == 7
    plt.close(fig)


def test_panel_grid_lays_panels_in_rows_and_removes_the_empty_cells():
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 1))
    axes = plots.panel_grid(fig, 5, ncols=2, panel_height=2.5, sharey=True)
    assert len(axes) == 5 and len(fig.axes) == 5
    assert fig.get_size_inches().tolist() == [plots.PAGE_WIDTH_IN, 7.5]  # three rows
    assert len(plots.panel_grid(plt.figure(), 1, ncols=3)) == 1
    plt.close("all")


def test_page_png_records_the_smallest_text_in_the_pngs_pixels():
    import base64
    import io

    from PIL import Image

    fig, ax = plt.subplots(dpi=100)
    ax.plot([0, 1])
    ax.set_xlabel("epoch", fontsize=9)
    ax.tick_params(labelsize=18)
    image = Image.open(io.BytesIO(base64.b64decode(plots.page_png(fig))))
    assert float(image.text[plots.SMALLEST_TEXT_KEY]) == pytest.approx(9 * 100 / 72, abs=0.01)
    plt.close(fig)
