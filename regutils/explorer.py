"""The sample explorer: the training and test planes as one interactive, server-free figure.

    from regutils import explorer
    layout = explorer.sample_explorer(runs, data, max_points=400, seed=0)   # a Bokeh layout
    page = explorer.embed(layout)        # shown by Jupyter as HTML; page.html: the fragment itself

``runs`` is a trace (:mod:`regutils.trace`, stacked or a single run) and ``data`` the
:class:`regutils.data.Data` it was trained on (its ``images_train``, ``images_test``, ``classes``).
Each plane holds one point per sample at its run-averaged (CBTL, forgetting events) or (CBGL,
mal-generalizing events), the measures of :func:`regutils.measures.table`, jittered by a seeded
fraction of the 1 / runs grid the averages lie on, and coloured by class. Hovering a point shows
the image, its class, its index in the source data set, its measures and its correctness strip
(runs down, epochs right; green where the sample is classified correctly). The class checkboxes,
each in its class's colour, are the legend and the filter; the box and lasso tools select samples
of either plane, and the button downloads the selected (and shown) samples as CSV, one row per
sample with the columns of :data:`CSV_COLUMNS`.

Every image travels in the page as a base64 PNG at its own size (the browser upscales it, nearest
neighbour), so a plane of more than ``max_points`` samples is subsampled to ``max_points``, stratified
by class and seeded; each plane's title says how many of its samples it shows. :func:`embed` inlines
BokehJS: the page needs no server and no network.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (BooleanFilter, BoxSelectTool, Button, CDSView, CheckboxGroup, ColumnDataSource, CustomJS,
                          HoverTool, InlineStyleSheet, LassoSelectTool)
from bokeh.plotting import figure
from bokeh.resources import INLINE
from jinja2 import Template
from PIL import Image

from . import measures
from .validation import Int, Real, validate_params

# Paul Tol's "muted" scheme, distinct under the common colour-vision deficiencies, and black:
# ten classes; more classes repeat the colours.
PALETTE = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
           "#DDCC77", "#CC6677", "#882255", "#AA4499", "#000000")
STRIP_COLOURS = np.array([[221, 221, 221], [0, 158, 115]], np.uint8)  # wrong: light grey; correct: green
FRAME_PX = 260  # side of a plane: two and their axes fit the book's text column
THUMB_PX = 64  # tooltip width of an image
STRIP_PX = 180  # tooltip width of a correctness strip
STRIP_ROW_PX = 6  # tooltip height of one run in the strip
CSV_COLUMNS = ("split", "position", "dataset_index", "label", "class", "cbtl", "cbgl", "events", "density")

# BokehJS and the document in one HTML fragment: no <html> wrapper, no external file
FRAGMENT = Template("{{ bokeh_js }}\n{{ plot_div }}\n{{ plot_script }}")


def as_uint8(images) -> np.ndarray:
    """(K, H, W[, C]) images, uint8 or floats in [0, 1] -> uint8 (K, H, W) grey or (K, H, W, C) colour."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise ValueError(f"images must have shape (K, H, W) or (K, H, W, C) with C in 1, 3, 4, got {images.shape}")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating) or (images.size and not (0 <= images.min() <= images.max() <= 1)):
        raise ValueError(f"images must be uint8 or floats in [0, 1], got {images.dtype}")
    return np.round(images * 255).astype(np.uint8)


def png_uris(pixels, palette=None) -> list[str]:
    """One ``data:image/png;base64,...`` URI per image of ``pixels``.

    pixels : ndarray, shape (K, H, W) or (K, H, W, C), uint8
        Grey or colour images; with ``palette``, indices into it.
    palette : ndarray, shape (P, 3), uint8, optional
        RGB colours of the indices (a paletted PNG: a few bytes per two-colour strip).
    """
    flat = None if palette is None else np.asarray(palette, np.uint8).ravel().tolist()
    uris = []
    for image in pixels:  # PNG encoding is per image
        picture = Image.fromarray(image)
        if flat is not None:
            picture.putpalette(flat)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return uris


def strips(correct) -> np.ndarray:
    """Correctness strips: bool ``(R, T, N)`` -> uint8 ``(N, R, T)``, 1 where sample n is correct in run r, epoch t."""
    correct = measures.as_correct_record(correct)
    if correct.ndim != 3:
        raise ValueError(f"correct must have shape (runs, epochs, N), got {correct.shape}")
    return np.moveaxis(correct, -1, 0).astype(np.uint8)


def stratified_positions(labels, max_points=None, seed=0) -> np.ndarray:
    """Sorted positions of at most ``max_points`` samples, each class represented in proportion, seeded.

    labels : ndarray, shape (N,), int
    Returns int64 (min(N, max_points),). Within each class the samples are ranked at random; a
    sample's key is its rank over its class's size, so the smallest ``max_points`` keys take every
    class's share of them (up to rounding).
    """
    labels = np.asarray(labels)
    n = labels.size
    if max_points is None or max_points >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    _, labels = np.unique(labels, return_inverse=True)
    counts = np.bincount(labels)
    order = np.lexsort((rng.random(n), labels))  # by class, at random within it
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - (np.cumsum(counts) - counts)[labels[order]]
    key = (rank + 0.5) / counts[labels]
    return np.sort(np.lexsort((rng.random(n), key))[:max_points])


def jittered(values, runs, rng, jitter) -> np.ndarray:
    """``values`` plus uniform noise of at most ``jitter`` / ``runs``: run averages lie on the 1 / runs grid."""
    return values + rng.uniform(-jitter, jitter, len(values)) / runs


def plane_columns(split, frame, correct, images, classes, positions, rng, jitter) -> dict:
    """The data source of one plane: one entry per sample at ``positions``.

    frame : the rows of ``split`` in :func:`regutils.measures.table`, one per sample in position order.
    correct : bool (R, T, N); images : (N, H, W[, C]).
    """
    rows = frame.iloc[positions]
    count = rows["cbtl" if split == "train" else "cbgl"].to_numpy()
    events = rows["events"].to_numpy()
    labels = rows["label"].to_numpy()
    runs = correct.shape[0]
    return {"x": jittered(count, runs, rng, jitter), "y": jittered(events, runs, rng, jitter),
            "count": count, "events": events, "density": rows["density"].to_numpy(),
            "position": positions, "dataset_index": rows["dataset_index"].to_numpy(), "label": labels,
            "class_name": np.asarray(classes, dtype=object)[labels],
            "colour": np.asarray(PALETTE)[labels % len(PALETTE)],
            "thumb": png_uris(as_uint8(images)[positions]),
            "strip": png_uris(strips(correct[..., positions]), STRIP_COLOURS)}


def tooltip(xlabel, ylabel, runs) -> str:
    """The hover template: image, class, index, measures, correctness strip."""
    strip_height = STRIP_ROW_PX * runs
    return f"""
<div style="display:flex;gap:8px;align-items:flex-start">
  <img src="@thumb" width="{THUMB_PX}" style="image-rendering:pixelated" alt="sample">
  <div style="font-size:12px;line-height:1.35">
    <b>@class_name</b><br>index @dataset_index<br>
    {xlabel} @count{{0.00}}<br>{ylabel} @events{{0.00}}<br>density @density{{0.0}}
  </div>
</div>
<img src="@strip" width="{STRIP_PX}" height="{strip_height}" style="image-rendering:pixelated;margin-top:4px"
     alt="correctness over runs and epochs">
<div style="font-size:11px;color:#555">runs &darr;, epochs &rarr;; green: correct</div>
"""


def plane_figure(source, view, title, xlabel, ylabel, runs, name):
    """One plane: the samples of ``source`` shown by ``view``, with hover and selection tools.

    ``name``: the points' renderer is ``name``-points (for finding it in the page, as the tests do).
    """
    fig = figure(title=title, x_axis_label=xlabel, y_axis_label=ylabel, frame_width=FRAME_PX, frame_height=FRAME_PX,
                 tools="pan,wheel_zoom,reset", toolbar_location="below")
    points = fig.scatter("x", "y", source=source, view=view, size=6, color="colour", alpha=0.75, line_color=None,
                         selection_line_color="black", nonselection_alpha=0.2, name=f"{name}-points")
    # one tooltip at a time: run averages overlap, and a stack of images would hide the plane
    fig.add_tools(HoverTool(renderers=[points], tooltips=tooltip(xlabel, ylabel, runs), limit=1),
                  BoxSelectTool(renderers=[points]), LassoSelectTool(renderers=[points]))
    return fig


def class_key_css(n_classes) -> str:
    """CSS that makes the class checkboxes the legend: each box, and a dot before its name, in its class's colour."""
    return "\n".join(f'input[value="{k}"] {{ accent-color: {c}; }} input[value="{k}"] + span::before '
                     f'{{ content: "\\25CF\\00a0"; color: {c}; }}'
                     for k, c in enumerate(np.resize(PALETTE, n_classes)))


CLASS_FILTER_JS = """
const shown = new Set(checkbox.active);
for (const [source, filter] of pairs) {
  filter.booleans = Array.from(source.data.label, (label) => shown.has(label));
}
"""

CSV_JS = """
const quote = (value) => '"' + String(value).replace(/"/g, '""') + '"';
const lines = [columns.join(",")];
for (const [split, source, filter] of planes) {
  const d = source.data;
  for (const i of source.selected.indices) {
    if (!filter.booleans[i]) continue;  // selected, then hidden by the class filter
    const count = [split === "train" ? d.count[i] : "", split === "test" ? d.count[i] : ""];
    lines.push([split, d.position[i], d.dataset_index[i], d.label[i], quote(d.class_name[i]), ...count,
                d.events[i], d.density[i]].join(","));
  }
}
const link = document.createElement("a");
link.href = URL.createObjectURL(new Blob([lines.join("\\n") + "\\n"], {type: "text/csv"}));
link.download = "selected_samples.csv";
document.body.appendChild(link);
link.click();
link.remove();
setTimeout(() => URL.revokeObjectURL(link.href), 1000);  // after the download has started
"""


def plane_title(name, shown, total) -> str:
    return f"{name}: {total:,} samples" if shown == total else f"{name}: {shown:,} of {total:,} samples"


@validate_params(max_points=Int(1, none=True), seed=Int(0), jitter=Real(0, 0.5, high_open=True))
def sample_explorer(runs, data, max_points=None, seed=0, jitter=0.35):
    """The training and test planes side by side, with hover, class filter and CSV export of a selection.

    Parameters
    ----------
    runs : regutils.trace.Trace
        ``train_correct`` (R, T, N) and ``test_correct`` (R, T, M) bool (or one run: (T, N), (T, M)),
        with ``y_*``, ``index_*`` and the probabilities :func:`regutils.measures.table` reads.
    data : regutils.data.Data
        ``images_train`` (N, H, W[, C]), ``images_test`` (M, H, W[, C]) and ``classes`` (K names).
    max_points : int or None
        Samples shown per plane at most: a larger plane is subsampled, stratified by class (None: all).
    seed : int
        Seeds the subsample and the jitter.
    jitter : float in [0, 0.5)
        Largest shift of a point along each axis, in units of the 1 / R grid of run averages.

    Returns
    -------
    bokeh.models.Column
        The class filter and the download button above the two planes; :func:`embed` shows it.
    """
    frame = measures.table(runs)  # density of each whole plane, before any subsample
    rng = np.random.default_rng(seed)
    planes, figures = [], []
    for split, name, xlabel, ylabel in (("train", "training set", "CBTL", "forgetting events"),
                                        ("test", "test set", "CBGL", "mal-generalizing events")):
        correct = np.asarray(getattr(runs, f"{split}_correct"))
        correct = correct[None] if correct.ndim == 2 else correct
        images = getattr(data, f"images_{split}")
        if len(images) != correct.shape[-1]:
            raise ValueError(f"data holds {len(images)} {split} images but the runs record {correct.shape[-1]} "
                             f"{split} samples: pass the data the runs were trained on")
        rows = frame[frame["split"] == split]
        positions = stratified_positions(rows["label"].to_numpy(), max_points, seed)
        source = ColumnDataSource(plane_columns(split, rows, correct, images, data.classes, positions, rng, jitter))
        keep = BooleanFilter(booleans=[True] * len(positions))
        figures.append(plane_figure(source, CDSView(filter=keep), plane_title(name, len(positions), len(rows)),
                                    xlabel, ylabel, correct.shape[0], split))
        planes.append((split, source, keep))
    checkbox = CheckboxGroup(labels=list(data.classes), active=list(range(len(data.classes))), inline=True,
                             stylesheets=[InlineStyleSheet(css=class_key_css(len(data.classes)))])
    checkbox.js_on_change("active", CustomJS(args=dict(checkbox=checkbox, pairs=[p[1:] for p in planes]),
                                             code=CLASS_FILTER_JS))
    button = Button(label="Download the selected samples (CSV)", width=280)
    button.js_on_event("button_click", CustomJS(args=dict(planes=planes, columns=list(CSV_COLUMNS)), code=CSV_JS))
    return column(checkbox, button, row(*figures))


class Embedded:
    """An HTML fragment that Jupyter (and MyST-NB) shows as ``text/html``."""

    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        return self.html


def embed(layout) -> Embedded:
    """``layout`` as an HTML fragment with BokehJS inline (only the parts it uses): no network, no server."""
    return Embedded(file_html(layout, INLINE, template=FRAGMENT))
