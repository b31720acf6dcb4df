"""The book at the smoke profile: every chapter executes, Jupyter Book builds it with no warning (-W),
and every page loads in headless Chromium with its figures drawn and no broken internal link.

Building takes a few minutes; REGUTILS_SKIP_BOOK=1 skips this file. Screenshots of every page land in
_build/screenshots/.
"""
from __future__ import annotations

import contextlib
import json
import re
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from regutils.book import chapters

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(os.environ.get("REGUTILS_SKIP_BOOK") == "1", reason="REGUTILS_SKIP_BOOK=1")


def pages() -> list[str]:
    return ["intro", "crosswalk", *chapters(ROOT)]


def test_every_chapter_executed_without_error(book):
    for name in chapters(ROOT):
        nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        assert nb["metadata"]["papermill"]["parameters"]["profile"] == "smoke"
        # a result shown as its bare repr (no HTML, image or Markdown form): what a page should not print
        texts = ["".join(o["data"]["text/plain"]) for c in nb["cells"] for o in c.get("outputs", [])
                 if o["output_type"] == "execute_result" and set(o.get("data", {})) == {"text/plain"}]
        leaked = [t for t in texts if re.search(r"<[\w.]+ (object )?at 0x[0-9a-f]+>", t)]
        assert not leaked, f"{name}: a stray repr on the page: {leaked[0][:80]}"
        for cell in nb["cells"]:  # a figure cell shows its figure and nothing else the caption would wrap
            if "figure" in cell["metadata"].get("mystnb", {}):
                shown = [o for o in cell.get("outputs", []) if o["output_type"] != "stream"]
                assert [("image/png" in o.get("data", {})) for o in shown] == [True], \
                    (name, cell["metadata"]["mystnb"]["figure"]["name"])


def figure_names(name: str) -> list[str]:
    """The names of the figures that chapter ``name`` declares (MyST-NB ``figure`` cell metadata)."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    return [c.metadata["mystnb"]["figure"]["name"] for c in nb.cells if "figure" in c.metadata.get("mystnb", {})]


def test_every_figure_cell_has_a_caption_and_a_unique_name():
    import jupytext

    names = []
    for name in chapters(ROOT):
        nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
        for i, cell in enumerate(nb.cells):
            # a figure is drawn in the cell itself or by a chapter module's plot_* function
            if cell.cell_type == "code" and re.search(r"plt\.(subplots|figure)\(|\bplot_\w+\(", cell.source):
                figure = cell.metadata.get("mystnb", {}).get("figure", {})
                assert figure.get("caption", "").strip() and figure.get("name"), f"{name}, cell {i}: no caption"
                names.append(figure["name"])
    assert len(names) == len(set(names)) and len(names) >= len(chapters(ROOT))


def code_share(name: str) -> float:
    """Characters of code cells over all cell characters of chapter ``name`` (jupytext sources)."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    code = sum(len(c.source) for c in nb.cells if c.cell_type == "code")
    return code / sum(len(c.source) for c in nb.cells)


def test_chapters_read_like_lectures_at_most_40_percent_code():
    shares = {name: round(code_share(name), 2) for name in chapters(ROOT)}
    assert all(share <= 0.40 for share in shares.values()), shares


def test_no_code_cell_of_several_lines_is_repeated_in_another_chapter():
    import jupytext

    where = {}
    for name in chapters(ROOT):
        for cell in jupytext.read(ROOT / "notebooks" / f"{name}.md").cells:
            source = cell.source.strip()
            if cell.cell_type == "code" and source.count("\n") >= 1:
                where.setdefault(source, set()).add(name)
    repeated = {source[:60]: names for source, names in where.items() if len(names) > 1}
    assert not repeated, repeated


def test_the_crosswalk_points_at_figures_that_exist():
    text = (ROOT / "book" / "crosswalk.md").read_text()
    refs = re.findall(r"\{numref\}`([^`]+)`", text)
    names = {fig for name in chapters(ROOT) for fig in figure_names(name)}
    assert len(refs) >= 13 and set(refs) <= names, set(refs) - names
    for paper_item in [f"Fig. {k}" for k in range(1, 14)] + ["Table 1", "Table 2", "Table 3"]:
        assert f"| {paper_item} |" in text, paper_item


def test_figures_are_numbered_and_captioned_on_the_pages(book):
    for name in chapters(ROOT):
        page = (book / f"book/{name}.html").read_text()
        for fig in figure_names(name):
            found = re.search(rf'<figure[^>]*id="{re.escape(fig)}".*?</figure>', page, re.S)
            assert found, f"{name}: figure {fig} missing"
            assert re.search(r'class="caption-number">Fig\. \d', found.group(0)), f"{name}: {fig} is not numbered"
            assert "<img" in found.group(0), f"{name}: {fig} has no image"


def test_every_chapter_says_where_its_runs_come_from(book):
    for name in chapters(ROOT):
        nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
        said = [o["data"]["text/markdown"] for c in nb["cells"] for o in c.get("outputs", [])
                if "Of this chapter's" in "".join(o.get("data", {}).get("text/markdown", ""))]
        assert len(said) == 1, name
        text = "".join(said[0])
        assert "trained in this build" in text or "loaded from this machine's trace cache" in text, (name, text)
        assert "bundle" not in text, (name, text)  # no bundle is given to the smoke build


def test_the_recipe_page_is_built(book):
    page = (HTML / "book" / "recipe.html").read_text()
    assert "How the default was chosen" in page
    # the tables generated from bench/results at build time, not only the page's prose
    assert "runs for CBTL target" in page and "runs (two halves)" in page and "<code" in page


def test_scorecard_gathers_every_chapter(book):
    card = (ROOT / "book" / "generated" / "scorecard.md").read_text()
    for name in chapters(ROOT):
        assert f"`{name} <{name}-scorecard>`" in card, f"chapter {name} wrote no scorecard row"
    intro = (book / "book" / "intro.html").read_text()
    assert intro.count("<tr") > len(chapters(ROOT))
    assert re.search(r"\d+ of \d+ claims reproduced", intro), "the intro does not open with the count"
    for name in chapters(ROOT):  # every row links to its chapter's "vs this build" section (Sphinx ids use "-")
        assert f'href="{name}.html#{name.replace("_", "-")}-scorecard"' in intro, f"no scorecard link to {name}"


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")


@contextlib.contextmanager
def browser_page():
    """A headless Chromium tab, 1280 pixels wide."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser.new_page(viewport={"width": 1280, "height": 1600})
        browser.close()


@needs_chromium
def test_pages_load_with_figures_and_working_links(book):
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    broken, blank, counts, raw_math, rendered = [], [], {}, [], 0
    with browser_page() as page:
        for name in pages():
            path = book / "book" / f"{name}.html"
            assert path.is_file(), f"page {name} was not built"
            page.goto(path.as_uri(), wait_until="load")
            assert page.title(), f"{name}: page has no title"
            # math: MathJax ships with the book (no network); once it has typeset, no delimiter is left
            page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : null")
            text = page.inner_text("main")
            raw_math += [f"{name}: {m}" for m in re.findall(r"\\\(.{0,30}|\\\[.{0,30}|\$\$.{0,30}", text)]
            rendered += page.evaluate("() => document.querySelectorAll('main mjx-container').length")
            images = page.evaluate("""() => Array.from(document.querySelectorAll('main img')).map(
                i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0}))""")
            counts[name] = len(images)
            blank += [f"{name}: {i['src']}" for i in images if not i["ok"]]
            hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            for href in hrefs:
                url = urlparse(href)
                if url.scheme != "file":
                    continue
                target = Path(unquote(url.path))
                if not target.exists():
                    broken.append(f"{name} -> {href}")
                elif url.fragment and target.suffix == ".html" and f'id="{url.fragment}"' not in target.read_text():
                    broken.append(f"{name} -> {href} (no such anchor)")
            page.screenshot(path=str(shots / f"{name}.png"), full_page=False)
            if name == "primer":  # a teaching chapter's exercise, its solution folded
                page.locator("div.exercise").first.scroll_into_view_if_needed()
                page.screenshot(path=str(shots / "primer-exercise.png"), full_page=False)
    assert not raw_math, f"math left as raw LaTeX: {raw_math[:5]}"
    assert rendered > 0, "no math element was typeset on any page"
    assert not blank, f"figures that did not render: {blank}"
    assert not broken, f"broken internal links: {broken}"
    figure_pages = [n for n in chapters(ROOT) if counts[n] == 0]
    assert not figure_pages, f"chapters without any figure: {figure_pages}"


@needs_chromium
def test_figures_are_legible_at_the_page_width(book):
    """No figure's text is below 10 CSS pixels in a 1280-pixel window, and no figure is shrunk below 0.6 of its size.

    A figure's smallest text is ``plots.SMALLEST_TEXT_KEY`` in its PNG: the smallest font size among the
    text the figure draws, in points, times dpi / 72, which is its height in the PNG's pixels
    (:func:`regutils.plots.page_png` writes it when the chapter's kernel shows the figure). The page
    shows the PNG at its rendered width: that height times rendered width / natural width is the text's
    height on the screen, in CSS pixels.
    """
    from PIL import Image

    from regutils.plots import SMALLEST_TEXT_KEY

    illegible, shrunk, unrecorded, seen = [], [], [], 0
    with browser_page() as page:
        for name in chapters(ROOT):
            page.goto((book / "book" / f"{name}.html").as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.querySelectorAll('main img')).map(
                i => ({src: i.src, natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))""")
            for image in images:
                seen += 1
                ratio = image["shown"] / image["natural"]
                text = Image.open(unquote(urlparse(image["src"]).path)).text.get(SMALLEST_TEXT_KEY)
                where = f"{name}: {Path(image['src']).name[:12]}"
                if text is None:
                    unrecorded.append(where)
                elif float(text) * ratio < 10:
                    illegible.append(f"{where} text {float(text) * ratio:.1f} px")
                if ratio < 0.6:
                    shrunk.append(f"{where} shown at {ratio:.2f} of its width")
    assert seen >= len(chapters(ROOT))
    assert not unrecorded, f"figures without their smallest text (not drawn by a chapter's kernel?): {unrecorded}"
    assert not illegible, f"text below 10 px at 1280 px: {illegible}"
    assert not shrunk, shrunk


#: what a quiet page never shows: a bare repr, a traceback, a warning
NOISE = re.compile(r"<[^<>]* at 0x[0-9a-f]+>|\bat 0x[0-9a-f]{6,}|Traceback|\w*Warning:|"
                   r"\b(User|Runtime|Future|Deprecation|Syntax|Resource|Pending)Warning\b")


@needs_chromium
def test_pages_are_quiet_and_no_output_is_cut_off(book):
    """No page shows a bare repr, a traceback or a warning (stderr included), and no cell output is wider than
    the page's column at 1280 pixels (it would be cut off behind a scroll bar)."""
    noisy, cut = [], []
    with browser_page() as page:
        for name in pages():
            page.goto((book / "book" / f"{name}.html").as_uri(), wait_until="load")
            noisy += [f"{name}: {m.group(0)}" for m in NOISE.finditer(page.inner_text("main"))]
            cut += [f"{name}: {c}" for c in page.evaluate("""() => Array.from(
                document.querySelectorAll('main .cell_output, main .cell_output *')).filter(
                e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 2).map(
                e => `${e.tagName}.${e.className} ${e.scrollWidth} > ${e.clientWidth}: ${e.innerText.slice(0, 60)}`)""")]
    assert not noisy, noisy[:10]
    assert not cut, cut[:10]


def test_the_injected_parameters_cell_is_removed_from_the_page(book):
    for name in chapters(ROOT):
        nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
        injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"], name
        page = (HTML / "book" / f"{name}.html").read_text()
        assert "# Parameters" not in page, name  # papermill's header of the injected cell


# --- execution order and environment of parallel chapters (no build needed) --------------------------


def test_longest_first_orders_by_earlier_seconds_and_falls_back_to_heavy_first():
    from regutils.book import HEAVY_FIRST, chapters, longest_first

    names = ["setup", "arpit", "primer", "robustness", "learnability"]
    assert longest_first(names, {}) == ["arpit", "robustness", "primer", "setup", "learnability"]
    timed = {"setup": 5.0, "arpit": 50.0, "primer": 70.0, "robustness": 1.0, "learnability": 9.0}
    assert longest_first(names, timed) == ["primer", "arpit", "learnability", "setup", "robustness"]
    # a chapter never timed goes first: its cost is unknown
    assert longest_first(names, {n: t for n, t in timed.items() if n != "setup"})[0] == "setup"
    assert set(HEAVY_FIRST) <= set(chapters())  # no stale name


def test_environment_sets_variables_for_the_block_and_restores_them(monkeypatch):
    import os

    from regutils.book import environment

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with environment(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"):
        assert (os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"]) == ("1", "1")
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ
    with pytest.raises(KeyError), environment(OMP_NUM_THREADS="2"):
        raise KeyError("restored on error too")
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_the_primer_exercises_have_hidden_solutions(book):
    page = (book / "book" / "primer.html").read_text()
    exercises = re.findall(r'<div[^>]*class="[^"]*exercise[^"]*"[^>]*id="(ex-[\w-]+)"', page)
    assert len(exercises) == 5, exercises
    solutions = re.findall(r'<(?:div|details)[^>]*class="([^"]*solution[^"]*)"', page)
    assert len(solutions) == 5 and all("dropdown" in c for c in solutions), solutions


def test_the_build_directory_holds_only_what_pages_use(book):
    assert not list(book.rglob("*.map"))
    pages_text = "".join(p.read_text() for p in book.rglob("*.html"))
    images = list((book / "_images").glob("*"))
    assert images and all(img.name in pages_text for img in images), \
        [img.name for img in images if img.name not in pages_text][:5]
    info = (ROOT / "book" / "generated" / "build_info.md").read_text()
    assert re.search(r"from commit `([0-9a-f]{4,}(\+changes)?|unknown)`", info)


def test_commit_names_the_checkout(tmp_path):
    from regutils.book import commit

    assert re.fullmatch(r"[0-9a-f]{4,}(\+changes)?", commit(ROOT))
    assert commit(tmp_path) == "unknown"  # not a git checkout
