"""Build the book: execute every chapter with papermill, then compile the HTML with Jupyter Book.

    python -m regutils book --profile default               # the whole book
    python -m regutils book --profile smoke --only setup    # one chapter
    python -m regutils book --only robustness -p arch=resnet32 -p optimizers='["sgd","adamax"]'

Chapters are the ``book/<name>`` entries of ``_toc.yml`` that have a source
``notebooks/<name>.md`` (jupytext, MyST markdown). Each is executed from the
repository root with ``profile`` and the given overrides injected into its
``parameters`` cell, and saved as ``book/<name>.ipynb``; chapters share runs
through the trace cache. Then ``book/generated/scorecard.md`` (every chapter's
"paper vs this build" rows) and ``book/generated/build_info.md`` (profile,
hardware, timings) are written for the intro, and ``jupyter-book build -W``
compiles ``_build/html``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import keyword
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

from . import report
from .bundle import hardware
from .profiles import CHAPTER_PARAMETERS, PROFILES, Settings, check_like, settings
from .validation import Int, check

ROOT = Path(__file__).resolve().parents[1]


def chapters(root: Path = ROOT) -> list[str]:
    """Chapter names in the order of ``_toc.yml``."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    names = [Path(f).name for f in files if Path(f).parent.name == "book"]
    return [n for n in names if (root / "notebooks" / f"{n}.md").is_file()]


def validate(profile: str, names: list[str], overrides: dict) -> dict[str, dict]:
    """Each chapter's overrides, once every name and value is checked against every chapter in ``names``.

    Names must be settings (:class:`regutils.profiles.Settings` fields) or parameters of at least one
    of the chapters (:data:`regutils.profiles.CHAPTER_PARAMETERS`); settings go through
    :func:`regutils.profiles.settings` (and the run config and device they define), chapter
    parameters must have their declared values' type. ValueError naming the parameter otherwise.
    """
    from .loop import resolve_device

    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} does not exist; allowed: {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Settings)} - {"profile"}
    params = {n: CHAPTER_PARAMETERS.get(n, {}) for n in names}
    known = fields.union(*params.values())
    for name, value in overrides.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name == "profile":
            raise ValueError(f"parameter name {name!r} is not allowed (a chapter parameter other than profile)")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; allowed: {', '.join(sorted(known))}"
            raise ValueError(f"parameter {name!r} is not a parameter of the chapters {', '.join(names)}{hint}")
    s = settings(profile, **{k: v for k, v in overrides.items() if k in fields})
    s.run_config()
    resolve_device(s.device)
    for name, value in overrides.items():
        if name not in fields:
            check_like(name, value, [v for p in params.values() for v in p.get(name, {}).values()])
    return {n: {k: v for k, v in overrides.items() if k in fields or k in params[n]} for n in names}


def execute(name: str, profile: str, overrides: dict, root: Path = ROOT, progress: bool = False) -> float:
    """Execute ``notebooks/<name>.md`` into ``book/<name>.ipynb``; the seconds it took."""
    import jupytext
    import papermill

    nb = jupytext.read(root / "notebooks" / f"{name}.md")
    out = root / "book" / f"{name}.ipynb"
    t0 = time.perf_counter()
    # tuples travel as lists: papermill writes the parameters cell as Python literals of JSON types
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    papermill.execute_notebook(nb, str(out), parameters=dict(profile=profile, overrides=overrides),
                               kernel_name="python3", cwd=str(root), progress_bar=progress)
    seconds = time.perf_counter() - t0
    hide_injected_parameters(out)
    return seconds


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the page shows the chapter's own parameters cell."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


RECIPE_STUDY = Path("bench") / "results" / "recipe_study.csv"
RECIPE_COLUMNS = {"arch": "network", "epochs": "epochs", "runs": "runs", "test_acc": "test accuracy",
                  "density_train": "density, train", "density_test": "density, test",
                  "split_half_cbtl": "split-half CBTL", "split_half_events": "split-half events",
                  "record_cbtl": "record CBTL", "record_events": "record events",
                  "between_archs_density": "between networks", "seconds_per_run": "s / run",
                  "runs_for_cbtl": "runs for CBTL target", "runs_for_events": "runs for events target"}


def recipe_markdown(csv: Path) -> str:
    """The recipe study's rows (``bench/recipe_study.py``) as a Markdown table, targets met in bold."""
    from .stability import TARGETS

    if not csv.is_file():
        return f"The study has not been run here: `python bench/recipe_study.py` writes `{RECIPE_STUDY}`.\n"
    table = pd.read_csv(csv).sort_values(["arch", "epochs"])
    cells = []
    for _, row in table.iterrows():
        line = []
        for col in RECIPE_COLUMNS:
            value = row.get(col)
            if col in ("arch",):
                text = f"`{value}`"
            elif pd.isna(value):
                text = "–"
            elif col in ("epochs", "runs", "runs_for_cbtl", "runs_for_events", "seconds_per_run"):
                text = f"{value:.0f}"
            else:
                text = f"{value:.3f}"
            met = col in TARGETS and not pd.isna(value) and value >= TARGETS[col]
            line.append(f"**{text}**" if met else text)
        cells.append("| " + " | ".join(line) + " |")
    head = "| " + " | ".join(RECIPE_COLUMNS.values()) + " |\n|" + "---|" * len(RECIPE_COLUMNS) + "\n"
    return head + "\n".join(cells) + "\n"


# the fallback order when no earlier build of the profile timed its chapters: those that train or fit
# the most first, so that parallel chapters end together
HEAVY_FIRST = ("arpit", "robustness", "pruning", "shallow_deep", "memorization", "easy_hard", "testing", "primer")


def longest_first(names: list[str], previous: dict[str, float]) -> list[str]:
    """``names`` in the order to execute them: by the seconds an earlier build took, longest first.

    Chapters without an earlier time go first in :data:`HEAVY_FIRST`'s order, then in the book's.
    Starting the longest first lets parallel chapters end together (longest-processing-time rule).
    """
    def key(name):
        if name in previous:
            return (1, -previous[name], 0)
        return (0, 0, HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST))
    return sorted(names, key=key)


@contextlib.contextmanager
def environment(**variables):
    """Set environment variables for the duration of the block (kernels started in it inherit them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_all(names: list[str], profile: str, per_chapter: dict, jobs: int, seconds_file: Path,
                root: Path = ROOT) -> dict[str, float]:
    """Execute the chapters ``names``, ``jobs`` at a time; every chapter's seconds at ``profile``, kept in ``seconds_file``.

    The chapters executed here have this build's seconds, the others those of their last build.

    With ``jobs`` > 1 every kernel is single-threaded: on a CPU, ``jobs`` one-thread kernels get
    more done per hour than one kernel with ``jobs`` threads. A run that two chapters need is
    trained once: the other kernel waits on its lock. A CPU run's probabilities depend on the
    thread count in their last bits only; each trace records the count
    (``meta["environment"]["threads"]``). ``seconds_file`` holds the seconds of the profile's
    earlier builds, {profile: {chapter: seconds}}: they set the order (:func:`longest_first`), and
    each chapter's time is written to it as soon as it ends, so a failed build keeps the others'.
    """
    from concurrent.futures import ThreadPoolExecutor

    recorded = json.loads(seconds_file.read_text()) if seconds_file.is_file() else {}
    recorded = recorded if all(isinstance(v, dict) for v in recorded.values()) else {}  # an older flat file
    seconds = recorded.setdefault(profile, {})
    lock = threading.Lock()

    def one(name):
        sys.stdout.write(f"executing {name} ({profile})\n")  # one write per line: threads print at once
        sys.stdout.flush()
        took = execute(name, profile, per_chapter[name], root)
        sys.stdout.write(f"  {name}: {took:.1f} s\n")
        sys.stdout.flush()
        with lock:
            seconds[name] = took
            seconds_file.write_text(json.dumps(recorded, indent=1))

    # every kernel starts in the root (papermill's cwd, the same for all threads) and inherits the environment
    threads = dict(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if jobs > 1 else {}
    with contextlib.chdir(root), environment(**threads), ThreadPoolExecutor(jobs) as pool:
        futures = {name: pool.submit(one, name) for name in longest_first(names, seconds)}
    failed = {name: f.exception() for name, f in futures.items() if f.exception() is not None}
    for name, error in failed.items():
        print(f"  {name} failed: {type(error).__name__}: {str(error)[:2000]}", flush=True)
    if failed:
        raise RuntimeError(f"chapters {', '.join(failed)} failed at profile {profile}; the runs they trained "
                           "are cached: run the command again to continue")
    return seconds


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _train_listed(config) -> None:
    from .train import get_run

    get_run(config, progress=False)


def pretrain(listed: list, jobs: int) -> None:
    """Train the runs ``listed`` (:func:`regutils.bundle.listed_runs`) that the cache lacks, longest first.

    ``jobs`` single-threaded processes train at once, each taking the longest run left: the
    chapters of ``regutils traces`` then find every run of the bundle they regenerate cached, and no
    chapter waits alone on a long list of its own runs. Runs the cache (or a bundle it reads)
    already holds are loaded, not trained.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    configs = [config for _, config, _ in listed]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        for _ in tqdm(pool.map(_train_listed, configs), total=len(configs), desc="runs of the bundle", unit="run",
                      disable=os.environ.get("REGUTILS_PROGRESS") == "0"):
            pass


def recipe_curve_markdown(csv: Path) -> str:
    """The split-half statistic against runs per half (``bench/recipe_study.py``'s curve CSV) as Markdown."""
    if not csv.is_file():
        return "No curve yet: `python bench/recipe_study.py` writes it next to the study.\n"
    curve = pd.read_csv(csv).sort_values(["arch", "epochs", "measure", "runs"])
    names = {"cbtl": "CBTL", "events": "forgetting events"}
    rows = [f"| `{r.arch}` | {r.epochs} | {names.get(r.measure, r.measure)} | {r.runs} | {r.observed:.3f} | "
            f"{r.spearman_brown:.3f} |" for r in curve.itertuples()]
    return ("| network | epochs | measure | runs (two halves) | observed | Spearman–Brown |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def write_intro_tables(names: list[str], profile: str, seconds: dict, root: Path = ROOT) -> None:
    out = root / "book" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    card = report.collect(out / "scorecard", names)
    (out / "tally.md").write_text(report.tally_markdown(card, profile))
    (out / "scorecard.md").write_text(report.scorecard_markdown(card))
    (out / "recipe_study.md").write_text(recipe_markdown(root / RECIPE_STUDY))
    (out / "recipe_curve.md").write_text(recipe_curve_markdown(root / RECIPE_STUDY.with_name("recipe_study_curve.csv")))
    rows = "\n".join(f"| {n} | {s:.1f} |" for n, s in seconds.items())
    (out / "build_info.md").write_text(
        f"Built with the **{profile}** profile from commit `{commit(root)}` on {hardware()}, Python "
        f"{platform.python_version()}, on {time.strftime('%Y-%m-%d')}. The seconds are each chapter's wall time "
        "in this build, as the trace cache and bundle found it (runs trained here count; runs loaded do not), "
        f"with chapters executed in parallel where the cores allow.\n\n| chapter | seconds to execute |\n"
        f"|---|---|\n{rows}\n")


def commit(root: Path = ROOT) -> str:
    """The short commit the tree is at, with ``+changes`` when it differs from it; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def clean_html(html: Path) -> None:
    """Remove what no page of a fresh build uses: source maps of the theme's scripts."""
    for path in html.rglob("*.map"):
        path.unlink()


def build(profile: str = "default", only: list[str] | None = None, overrides: dict | None = None,
          html: bool = True, root: Path = ROOT, jobs: int = 1) -> None:
    """Execute the chapters (``only``, or all) at ``profile`` and build the HTML book.

    ``jobs`` > 1: that many chapters at once, each in a single-threaded kernel (:func:`execute_all`).
    """
    check("jobs", jobs, Int(1))
    names = chapters(root)
    unknown = set(only or []) - set(names)
    if unknown:
        raise ValueError(f"unknown chapters {sorted(unknown)}; chapters: {', '.join(names)}")
    selected = [n for n in names if not only or n in only]
    per_chapter = validate(profile, selected, overrides or {})  # before any chapter runs
    os.environ.setdefault("REGUTILS_SCORECARD_DIR", str(root / "book" / "generated" / "scorecard"))
    os.environ.setdefault("REGUTILS_PROGRESS", "0")
    seconds_file = root / "book" / "generated" / "seconds.json"
    seconds_file.parent.mkdir(parents=True, exist_ok=True)
    seconds = execute_all(selected, profile, per_chapter, jobs, seconds_file, root)
    seconds = {n: seconds[n] for n in names if n in seconds}
    write_intro_tables(names, profile, seconds, root)
    if html:
        shutil.rmtree(root / "_build" / "html", ignore_errors=True)  # no image of an earlier build stays behind
        cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", "-W", "-n", "--keep-going", str(root)]
        subprocess.run(cmd, check=True)
        clean_html(root / "_build" / "html")
        print(f"book: {root / '_build' / 'html' / 'index.html'}")
