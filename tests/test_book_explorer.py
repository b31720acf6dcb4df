"""The sample explorer on the built representation page, in headless Chromium with no network: hovering a
sample shows its image, the class checkboxes filter the points, the button downloads the selection as CSV.

Needs the smoke build (the session fixture ``book``, minutes) and Debian's Chromium (skipped without it).
"""
from __future__ import annotations

import csv
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_LIMIT = 5_000_000  # bytes of the representation page, the explorer's images and BokehJS included

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")

# the points of a plane as drawn: the glyph's screen positions (canvas pixels) and the canvas on the page
POINTS_JS = """(name) => {
  const renderer = Bokeh.documents[0].get_model_by_name(name);
  const view = Bokeh.index.find_one(renderer);
  const plot = view.parent;
  plot.el.scrollIntoView({block: "center"});
  const canvas = plot.canvas_view.el.getBoundingClientRect();
  return {left: canvas.left, top: canvas.top, sx: Array.from(view.glyph.sx), sy: Array.from(view.glyph.sy)};
}"""
READY_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length > 0
  && Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name("train-points")) != null"""


@pytest.fixture(scope="module")
def explorer_page(book):
    """The representation page, loaded with every request beyond the page's own files refused and recorded."""
    from playwright.sync_api import sync_playwright

    outside = []

    def refuse_network(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page.route("**/*", refuse_network)
        page.goto((book / "book" / "representation.html").as_uri(), wait_until="load")
        page.wait_for_function(READY_JS, timeout=60_000)
        yield page, outside
        browser.close()


def test_the_page_stays_light(book):
    size = (book / "book" / "representation.html").stat().st_size
    assert size < PAGE_LIMIT, f"representation.html weighs {size:,} bytes"


def test_the_explorer_loads_without_network(explorer_page):
    page, outside = explorer_page
    assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('test-points') != null")
    assert not outside, f"the page asked the network for {outside[:3]}"


def test_hovering_a_training_sample_shows_its_image(explorer_page, book):
    page, _ = explorer_page
    points = page.evaluate(POINTS_JS, "train-points")
    assert points["sx"], "the training plane draws no point"
    x, y = points["left"] + points["sx"][0], points["top"] + points["sy"][0]
    page.mouse.move(x + 20, y + 20)  # arrive at the point, as a hand does
    page.mouse.move(x, y)
    image = page.locator(".bk-Tooltip img[alt='sample']").first  # CSS selectors pierce Bokeh's shadow roots
    image.wait_for(state="visible", timeout=10_000)
    loaded = image.evaluate("i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0")
    assert loaded and image.get_attribute("src").startswith("data:image/png;base64,")
    strip = page.locator(".bk-Tooltip img[alt='correctness over runs and epochs']").first
    assert strip.evaluate("i => i.complete && i.naturalWidth > 0")
    shots = book.parent / "screenshots"  # next to the pages' own screenshots (tests/test_book.py)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "explorer-tooltip.png"))
    page.mouse.move(0, 0)


def test_the_class_checkboxes_hide_a_class(explorer_page):
    page, _ = explorer_page
    shown = "Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('train-points')).glyph.sx.length"
    before = page.evaluate(f"() => {shown}")
    of_first_class = page.evaluate("""() => Array.from(Bokeh.documents[0].get_model_by_name('train-points')
                                        .data_source.data.label).filter((label) => label == 0).length""")
    assert 0 < of_first_class < before
    checkbox = page.locator(".bk-input-group input[type=checkbox]").first
    checkbox.uncheck()
    page.wait_for_function(f"() => {shown} == {before - of_first_class}", timeout=10_000)
    checkbox.check()
    page.wait_for_function(f"() => {shown} == {before}", timeout=10_000)


def test_the_button_downloads_the_selected_samples_as_csv(explorer_page, tmp_path):
    from regutils.explorer import CSV_COLUMNS

    page, _ = explorer_page
    expected = page.evaluate("""() => {
      const source = Bokeh.documents[0].get_model_by_name('train-points').data_source;
      source.selected.indices = [0, 1, 2];
      return [0, 1, 2].map((i) => [String(source.data.position[i]), source.data.class_name[i]]);
    }""")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the selected samples (CSV)").click()
    path = tmp_path / "selected.csv"
    download.value.save_as(path)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [[r["position"], r["class"]] for r in rows] == expected and {r["split"] for r in rows} == {"train"}
    assert all(float(r["cbtl"]) >= 0 and r["cbgl"] == "" for r in rows)
