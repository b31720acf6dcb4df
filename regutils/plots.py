"""Plotting helpers for the book: one style, colour-blind-safe colours, drawing on a given Axes.

Every function takes the matplotlib Axes (or Figure) to draw on and returns what it drew; none
creates a figure or calls show, so the module works with any backend.

Colours: viridis for densities and matrices, the Okabe-Ito palette for categories
(train/test, strategies).

Legibility: a page shows a figure in its text column, 672 CSS pixels wide in a 1280-pixel window,
so text of f points in a figure W inches wide is f / 72 * 672 / W pixels high there. Text is never
smaller than :data:`SMALL_PT` (legends, tile titles), and a figure is at most :data:`PAGE_WIDTH_IN`
wide (several panels go in a grid, :func:`panel_grid`): at least 10 pixels. In a chapter's kernel,
every figure is shown as a PNG that records its smallest text in pixels (:data:`SMALLEST_TEXT_KEY`),
which the book's browser test reads back.

Usage:
    import matplotlib.pyplot as plt
    from regutils import plots
    plots.use_style()
    fig, ax = plt.subplots()
    sc = plots.density_scatter(ax, cbtl, events, density, rays_deg=15)
    plots.add_colorbar(ax, sc, label="density")
    plots.histogram_1d(ax2, cbtl_train, cbgl_test)
    plots.events_vs_measure(ax3, cbtl, events)
    plots.correlation_heatmap(ax4, matrix, ["run 1", "run 2", "run 3"])
"""

import sys

import matplotlib as mpl
import numpy as np
from cycler import cycler
from matplotlib.axis import Axis
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.text import Text

from .validation import Int, check

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442",
             "#0072B2", "#D55E00", "#CC79A7", "#000000")
COLORS = {"train": "#0072B2", "test": "#D55E00"}

#: points: the smallest text of a figure (legends, tile titles, annotations)
SMALL_PT = 9
#: inches: a full-width figure; its SMALL_PT text is 9 / 72 * 672 / 8 = 10.5 pixels high in the page's
#: column, a margin for the labels that the tight bounding box adds
PAGE_WIDTH_IN = 8.0

STYLE = {
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "image.cmap": "viridis",
    "figure.figsize": (5.0, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": SMALL_PT,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
}


#: PNG text chunk of a page figure: its smallest text height in the PNG's own pixels
SMALLEST_TEXT_KEY = "regutils smallest text px"


def use_style():
    """Apply STYLE to matplotlib's global rcParams (use mpl.rc_context(STYLE) for a local scope).

    In an IPython kernel that draws inline (a chapter's page), figures are then shown by
    :func:`page_png`.
    """
    mpl.rcParams.update(STYLE)
    _show_figures_as_page_png()


def _drawn_texts(artist):
    """The visible, non-empty Text artists under ``artist`` (hidden parents and axes turned off excluded)."""
    if not artist.get_visible() or (isinstance(artist, Axis) and not artist.axes.axison):
        return
    if isinstance(artist, Text) and artist.get_text().strip():
        yield artist
    for child in artist.get_children():
        yield from _drawn_texts(child)


def smallest_text_pt(fig) -> float:
    """The smallest font size, in points, of the text that ``fig`` draws (inf when it draws none)."""
    fig.draw_without_rendering()  # tick labels exist once the figure is laid out
    return min((text.get_fontsize() for text in _drawn_texts(fig)), default=float("inf"))


def page_png(fig) -> str:
    """``fig`` as IPython's inline backend shows it (base64 PNG, tight box, the figure's dpi), plus a
    text chunk :data:`SMALLEST_TEXT_KEY`: its smallest text height in the PNG's pixels."""
    from IPython.core.pylabtools import print_figure

    smallest_px = smallest_text_pt(fig) * fig.dpi / 72
    return print_figure(fig, "png", base64=True, bbox_inches="tight",
                        metadata={SMALLEST_TEXT_KEY: f"{smallest_px:.2f}"})


def _show_figures_as_page_png():
    """Register :func:`page_png` as IPython's PNG form of a Figure when a kernel draws inline."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if shell is None or "inline" not in mpl.get_backend(auto_select=False):
        return
    # its first import registers IPython's default PNG form of a Figure: import it before replacing that
    import matplotlib_inline.backend_inline  # noqa: F401

    shell.display_formatter.formatters["image/png"].for_type(Figure, page_png)


def add_colorbar(ax, mappable, label=None):
    """Colorbar for `mappable` next to `ax`; returns the Colorbar."""
    colorbar = ax.figure.colorbar(mappable, ax=ax)
    if label is not None:
        colorbar.set_label(label)
    return colorbar


def panel_grid(fig, n, ncols=2, panel_height=3.0, **subplots_kw):
    """``n`` panels on ``fig`` in rows of at most ``ncols``, the figure ``panel_height`` inches per row.

    Cells of the last row left empty are removed. ``subplots_kw`` go to ``Figure.subplots`` (e.g.
    sharey). Returns the n Axes, row by row, as a 1-D array.
    """
    check("n", n, Int(1))
    check("ncols", ncols, Int(1))
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    fig.set_size_inches(fig.get_figwidth(), panel_height * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplots_kw).ravel()
    for ax in axes[n:]:
        ax.remove()
    return axes[:n]


def _same_length(**arrays):
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f"expected 1-D arrays of one length, got shapes {shapes}")
    return arrays.values()


def density_scatter(ax, x, y, density, *, rays_deg=None, center=None, cmap="viridis",
                    log=True, label=None, s=4):
    """Scatter of (x, y) coloured by density, dense points drawn last (on top).

    rays_deg: draw rays from `center` (default (0, 0)) at every multiple of this angle in
    [0, 360), angles measured in data coordinates; the axis limits stay those of the points.
    log: logarithmic colour scale (densities must then be positive). Returns the PathCollection.
    """
    x, y, density = _same_length(x=x, y=y, density=density)
    if log and np.any(density <= 0):
        raise ValueError("log=True needs positive densities; pass log=False for zeros")
    order = np.argsort(density, kind="stable")
    norm = LogNorm(vmin=density.min(), vmax=density.max()) if log else None
    points = ax.scatter(x[order], y[order], c=density[order], cmap=cmap, norm=norm, s=s,
                        linewidths=0, label=label)
    if rays_deg is not None:
        if not 0 < rays_deg <= 360:
            raise ValueError(f"rays_deg must be in (0, 360], got {rays_deg}")
        cx, cy = (0.0, 0.0) if center is None else center
        ax.autoscale_view()
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        # reach the farthest corner of the visible box
        length = max(np.hypot(cx - corner_x, cy - corner_y)
                     for corner_x in xlim for corner_y in ylim)
        for angle in np.deg2rad(np.arange(0.0, 360.0, rays_deg)):
            ax.plot([cx, cx + length * np.cos(angle)], [cy, cy + length * np.sin(angle)],
                    color="0.5", linewidth=0.6, linestyle="--", zorder=0)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
    return points


def _integer_valued(values):
    return np.issubdtype(values.dtype, np.integer) or np.all(values == np.round(values))


def histogram_1d(ax, values_a, values_b=None, labels=("train", "test"), bins=None):
    """Normalized histograms (area 1) of one or two samples overlaid on shared bins.

    bins=None: unit bins centred on the integers for integer-valued data, else numpy's "auto"
    edges. Returns the list of BarContainers, one per sample.
    """
    samples = [np.asarray(values_a).ravel()]
    if values_b is not None:
        samples.append(np.asarray(values_b).ravel())
    if any(v.size == 0 for v in samples):
        raise ValueError("histogram_1d needs non-empty samples")
    pooled = np.concatenate(samples)
    if bins is None:
        if _integer_valued(pooled):
            bins = np.arange(pooled.min() - 0.5, pooled.max() + 1.5)
        else:
            bins = np.histogram_bin_edges(pooled, bins="auto")
    colors = [COLORS["train"], COLORS["test"]]
    alpha = 1.0 if len(samples) == 1 else 0.5
    containers = []
    for values, label, color in zip(samples, labels, colors):
        _, _, bars = ax.hist(values, bins=bins, density=True, alpha=alpha, color=color,
                             label=label)
        containers.append(bars)
    return containers


def mean_and_range_by_value(measure, events):
    """Group `events` by the distinct values of `measure`.

    Returns (values, mean, low, high): the sorted distinct values of measure and, for each, the
    mean, minimum and maximum of events over the samples with that value.
    """
    measure, events = _same_length(measure=measure, events=events)
    values, group = np.unique(measure, return_inverse=True)
    events = events.astype(np.float64)
    mean = np.bincount(group, weights=events) / np.bincount(group)
    low = np.full(values.size, np.inf)
    high = np.full(values.size, -np.inf)
    np.minimum.at(low, group, events)
    np.maximum.at(high, group, events)
    return values, mean, low, high


def curve_with_band(ax, x, mean, low, high, label=None, color=None):
    """Line of `mean` over a shaded band between `low` and `high`; returns (line, band)."""
    (line,) = ax.plot(x, mean, label=label, color=color)
    band = ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    return line, band


def events_vs_measure(ax, measure, events, label=None, color=None):
    """Mean number of events for each value of a measure (e.g. CBTL), with its min-max band.

    Returns (line, band) from `curve_with_band`.
    """
    values, mean, low, high = mean_and_range_by_value(measure, events)
    return curve_with_band(ax, values, mean, low, high, label=label, color=color)


def _as_unit_images(images):
    """(K, H, W[, C]) images, uint8 or floats in [0, 1] -> floats in [0, 1], gray as (K, H, W)."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise ValueError(f"images must have shape (K, H, W) or (K, H, W, C) with C in 1, 3, 4, "
                         f"got {images.shape}")
    if images.dtype == np.uint8:
        return images / 255.0
    images = images.astype(np.float64)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError("float images must lie in [0, 1] (undo the normalization first)")
    return images


def _gray_kwargs(image):
    return {"cmap": "gray", "norm": Normalize(0.0, 1.0)} if image.ndim == 2 else {}


def _montage(images, ncols, pad, gap):
    """Tile (K, H, W[, C]) images into one image on a white background.

    Columns are `pad` pixels apart, rows `gap` pixels apart, and a `gap - pad` margin is left
    above the first row (room for titles).
    Shape: (gap - pad + rows*(H+gap) - gap, ncols*(W+pad) - pad).
    """
    k, h, w = images.shape[:3]
    nrows = -(-k // ncols)
    channels = images.shape[3:]
    tiles = np.ones((nrows * ncols, gap + h, w + pad) + channels)
    tiles[:k, gap:, :w] = images  # each tile: its gap above the image, its pad to the right
    tiles = tiles.reshape((nrows, ncols, gap + h, w + pad) + channels)
    canvas = tiles.swapaxes(1, 2).reshape((nrows * (gap + h), ncols * (w + pad)) + channels)
    return canvas[pad:, :canvas.shape[1] - pad]


def image_grid(ax_or_fig, images, titles=None, ncols=8, pad=2):
    """Images (K, H, W[, C]), uint8 or floats in [0, 1], in a grid with ncols columns.

    On a Figure: one subplot per image (titles as subplot titles); returns the list of K
    AxesImages. On an Axes: one tiled image with `pad` white pixels between tiles, and a band of
    a third of the image height above each row when titles are given (titles written there);
    returns a one-element list with that AxesImage.
    """
    images = _as_unit_images(images)
    k = images.shape[0]
    check("ncols", ncols, Int(1))
    check("pad", pad, Int(0))
    ncols, pad = min(int(ncols), k), int(pad)
    if titles is not None and len(titles) != k:
        raise ValueError(f"titles has {len(titles)} entries for {k} images")
    if isinstance(ax_or_fig, Figure):
        axes = ax_or_fig.subplots(-(-k // ncols), ncols, squeeze=False).ravel()
        drawn = []
        for i, ax in enumerate(axes):
            ax.set_axis_off()
            if i < k:
                drawn.append(ax.imshow(images[i], **_gray_kwargs(images[i])))
                if titles is not None:
                    ax.set_title(titles[i])
        return drawn
    ax = ax_or_fig
    h, w = images.shape[1:3]
    gap = pad if titles is None else pad + -(-h // 3)
    canvas = _montage(images, ncols, pad, gap)
    drawn = ax.imshow(canvas, **_gray_kwargs(canvas))
    ax.set_axis_off()
    for i, title in enumerate(() if titles is None else titles):
        row, col = divmod(i, ncols)
        # just above the image, inside its row's band
        ax.text(col * (w + pad) + w / 2, (gap - pad) + row * (gap + h) - 1, title,
                ha="center", va="bottom", fontsize=SMALL_PT)
    return [drawn]


def images_at_positions(ax, x, y, images, picks, zoom=1.0, frame=True):
    """Thumbnails images[p] drawn at (x[p], y[p]) for each index p in picks.

    Returns the list of AnnotationBbox artists; the axis limits grow to include the picks.
    """
    x, y = _same_length(x=x, y=y)
    images = _as_unit_images(images)
    picks = np.asarray(picks, dtype=np.int64).ravel()
    if images.shape[0] != x.size:
        raise ValueError(f"images has {images.shape[0]} entries for {x.size} positions")
    if picks.size and not (0 <= picks.min() and picks.max() < x.size):
        raise ValueError(f"picks must index the {x.size} samples")
    boxes = []
    for p in picks:  # a handful of thumbnails: one artist each
        thumbnail = OffsetImage(images[p], zoom=zoom, **_gray_kwargs(images[p]))
        box = AnnotationBbox(thumbnail, (x[p], y[p]), frameon=frame, pad=0.1)
        ax.add_artist(box)
        boxes.append(box)
    if picks.size:
        ax.update_datalim(np.column_stack([x[picks], y[picks]]))
        ax.autoscale_view()
    return boxes


def correlation_heatmap(ax, matrix, labels, annotate=True, vmin=None, vmax=1, cmap="viridis",
                        fmt=".2f"):
    """Heatmap of a (K, K) correlation matrix with labelled rows and columns.

    annotate writes each value (format `fmt`) in its cell, in white on dark cells and black on
    light ones. Returns the AxesImage.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries for a matrix of shape {matrix.shape}")
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
    ticks = np.arange(matrix.shape[0])
    ax.set_xticks(ticks, labels=labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels=labels)
    if annotate:
        rgba = image.cmap(image.norm(matrix))
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        for (row, col), value in np.ndenumerate(matrix):  # K^2 labels, K small
            ax.text(col, row, format(value, fmt), ha="center", va="center", fontsize=SMALL_PT,
                    color="white" if luminance[row, col] < 0.5 else "black")
    return image


def run_raster(ax, correct, event_color=OKABE_ITO[5]):
    """One sample's record over repeated runs (paper Fig 5): a line per run, a cross at each event.

    correct: ``(R, T)`` bool, whether the sample is classified correctly at the end of epoch
    t = 1..T in run r. Cells are grey where it is correct; a cross marks each forgetting or
    mal-generalizing event (acc^{t-1} = 1, acc^t = 0). Runs go down, epochs right.
    Returns (AxesImage, PathCollection of the crosses).
    """
    from .measures import event_mask

    correct = np.asarray(correct)
    if correct.ndim != 2:
        raise ValueError(f"correct must be (runs, epochs), got shape {correct.shape}")
    runs, epochs = correct.shape
    events = event_mask(correct[:, :, None])[:, :, 0]
    image = ax.imshow(correct.astype(np.float64), cmap="Greys", vmin=0, vmax=2.5, aspect="auto",
                      interpolation="nearest", extent=(0.5, epochs + 0.5, runs + 0.5, 0.5))
    run_idx, epoch_idx = np.nonzero(events)
    crosses = ax.scatter(epoch_idx + 1, run_idx + 1, marker="x", color=event_color, s=30, label="event")
    ax.set_xlabel("epoch")
    ax.set_ylabel("run")
    ax.set_yticks(np.arange(1, runs + 1) if runs <= 12 else np.linspace(1, runs, 5).round())
    return image, crosses


#: frame colours of the paper's Fig. 9: training samples of the test sample's class (Okabe-Ito bluish green),
#: of other classes (Okabe-Ito vermillion, told apart from the green under colour-blindness); the test sample itself
SAME_CLASS_FRAME, OTHER_CLASS_FRAME, TEST_SAMPLE_FRAME = (0.0, 0.62, 0.45), (0.84, 0.37, 0.0), (0.6, 0.6, 0.6)


def frame_by_class(images, labels, target_label, width=2):
    """Images framed by class: green when the label is target_label, red otherwise (paper Fig. 9).

    images: (K, H, W[, C]) uint8 or floats in [0, 1]; labels: (K,). Returns float RGB images of
    shape (K, H + 2 width, W + 2 width, 3): gray images are repeated on three channels, and a
    border `width` pixels wide is painted :data:`SAME_CLASS_FRAME` or :data:`OTHER_CLASS_FRAME`.
    """
    images = _as_unit_images(images)
    labels = np.asarray(labels)
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    check("width", width, Int(1))
    width = int(width)
    rgb = np.repeat(images[..., None], 3, axis=-1) if images.ndim == 3 else images[..., :3]
    colors = np.where((labels == target_label)[:, None], SAME_CLASS_FRAME, OTHER_CLASS_FRAME)  # (K, 3)
    k, h, w = rgb.shape[:3]
    framed = np.broadcast_to(colors[:, None, None, :], (k, h + 2 * width, w + 2 * width, 3)).copy()
    framed[:, width:width + h, width:width + w] = rgb
    return framed


def sync_grid(ax, test_image, train_images, train_labels, test_label, titles=None, ncols=8, width=None):
    """One test sample and its synchronized training samples, framed by class (paper Fig. 9).

    The test sample comes first with a :data:`TEST_SAMPLE_FRAME` (gray) frame, then train_images
    (K, H, W[, C]) framed by :func:`frame_by_class`; titles (K + 1 entries, the test sample's
    first) are optional. width: frame width in pixels (None: H // 16, at least 1).
    Returns the AxesImage list of :func:`image_grid`.
    """
    test_image = np.asarray(test_image)
    width = max(1, test_image.shape[0] // 16) if width is None else width
    test = frame_by_class(test_image[None], [test_label], test_label, width)
    test[:, :width], test[:, -width:], test[:, :, :width], test[:, :, -width:] = (TEST_SAMPLE_FRAME,) * 4
    train = frame_by_class(train_images, train_labels, test_label, width)
    return image_grid(ax, np.concatenate([test, train]), titles=titles, ncols=ncols)


# test row first, as in the paper's Fig. 10 and 11: (x, y, density) keys of robustness.sample_measures
REPRESENTATION_ROWS = (("CBGL", "mal-generalizing", "test density"), ("CBTL", "forgetting", "train density"))


def representations(axes, measures_by_group, s=4):
    """Each group's bi-dimensional representations, one column per group (paper Fig. 10 and 11).

    axes: (2, K) array of Axes for K groups; measures_by_group: {group: dict with the keys of
    REPRESENTATION_ROWS, each (N,) or (M,)}, e.g. :func:`regutils.robustness.sample_measures`.
    Top row: the test plane (CBGL, mal-generalizing events); bottom row: the training plane
    (CBTL, forgetting events); points coloured by their density (log scale), the group named in
    the top panel's title. Returns the (2, K) array of PathCollections.
    """
    axes = np.asarray(axes, dtype=object)
    if axes.shape != (2, len(measures_by_group)):
        raise ValueError(f"axes must be (2, {len(measures_by_group)}) for {len(measures_by_group)} groups, "
                         f"got shape {axes.shape}")
    drawn = np.empty(axes.shape, dtype=object)
    for col, (group, values) in enumerate(measures_by_group.items()):
        for row, (x, y, d) in enumerate(REPRESENTATION_ROWS):
            ax = axes[row, col]
            drawn[row, col] = density_scatter(ax, values[x], values[y], values[d], s=s)
            ax.set_xlabel(x)
            ax.set_ylabel(f"{y} events")
        axes[0, col].set_title(str(group))
    return drawn
