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
commit, hardware, which chapters were executed or reused, this build's and the
last cold build's times) are written for the intro, and ``jupyter-book build -W``
compiles ``_build/html``.

A chapter whose inputs have not changed since an execution stored in the trace
cache's ``chapters/`` folder is not executed again: that execution's notebook,
scorecard rows and own files (``book/generated/<name>/``) are put back in place
(:mod:`regutils.executed` says what the inputs are). A chapter writes files only
to its scorecard (``$REGUTILS_SCORECARD_DIR``) and to its own folder: those are
what a reuse puts back. Sphinx then reads again only the pages whose sources
changed (:func:`build_html`). ``--force`` executes every chapter and builds
every page.
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
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from . import executed, report
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
    fields = setting_names()
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


def execute(name: str, profile: str, overrides: dict, root: Path = ROOT, progress: bool = False,
            source: str | None = None, env: dict | None = None) -> float:
    """Execute ``notebooks/<name>.md`` into ``book/<name>.ipynb``; the seconds it took.

    ``source``: the notebook's text (default: read from the file). ``env``: variables added to the
    kernel's environment (this process's), for this chapter alone.
    """
    import jupytext
    import papermill

    if source is None:
        source = (root / "notebooks" / f"{name}.md").read_text()
    nb = jupytext.reads(source, fmt="md")
    out = root / "book" / f"{name}.ipynb"
    t0 = time.perf_counter()
    # tuples travel as lists: papermill writes the parameters cell as Python literals of JSON types
    papermill.execute_notebook(nb, str(out), parameters=parameters(profile, overrides), kernel_name="python3",
                               cwd=str(root), progress_bar=progress, kernel_manager_class=kernel_manager(env or {}))
    seconds = time.perf_counter() - t0
    hide_injected_parameters(out)
    return seconds


def parameters(profile: str, overrides: dict) -> dict:
    """What papermill injects into a chapter: ``profile`` and ``overrides``, tuples as lists (JSON types)."""
    return dict(profile=profile, overrides={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()})


def kernel_manager(env: dict):
    """A kernel manager class whose kernels start with ``env`` added to this process's environment."""
    from jupyter_client import AsyncKernelManager

    class ChapterKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**kw.get("env", os.environ), **env}
            return await super().start_kernel(**kw)

    return ChapterKernelManager


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
HEAVY_FIRST = ("arpit", "robustness", "every_measure", "pruning", "shallow_deep", "memorization", "easy_hard", "testing",
               "primer")


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


@dataclasses.dataclass(frozen=True)
class Chapter:
    """A chapter of this build: the execution that produced its page, and whether this build reused it."""

    execution: executed.Execution
    reused: bool


def build_context(root: Path = ROOT) -> dict:
    """The inputs every chapter shares, read before any runs (the ``context`` of :func:`regutils.executed.chapter_key`).

    The package source the kernels import (``root/regutils``), the installed distributions and the
    Python, the hardware, the manifest of each bundle (``$REGUTILS_BUNDLE``; a chapter's page
    quotes it), and the ``REGUTILS_*`` settings a kernel reads.
    """
    from .bundle import MANIFEST, bundle_dirs

    manifests = {str(d): executed.file_digest(d / MANIFEST) if (d / MANIFEST).is_file() else None
                 for d in bundle_dirs()}
    return {"package": executed.package_digest(root / "regutils"), "distributions": list(executed.distributions()),
            "python": sys.version, "hardware": hardware(), "bundles": manifests,
            "environment": executed.environment_settings()}


def data_fingerprint(profile: str, overrides: dict) -> str:
    """The fingerprint of the data the chapter's settings name (:attr:`regutils.data.Data.fingerprint`)."""
    from .loop import load_for

    s = settings(profile, **{k: v for k, v in overrides.items() if k in setting_names()})
    return load_for(s.run_config().data, s.arch).fingerprint


def setting_names() -> set[str]:
    """The fields of :class:`regutils.profiles.Settings` an override may set."""
    return {f.name for f in dataclasses.fields(Settings)} - {"profile"}


def chapter_key(name: str, profile: str, overrides: dict, source: str, context: dict) -> str:
    """The key of chapter ``name``'s execution: its ``source``, parameters, data and the build's ``context``."""
    return executed.chapter_key(name, source, parameters(profile, overrides),
                                dict(context, data=data_fingerprint(profile, overrides)))


def own_folder(name: str, root: Path = ROOT) -> Path:
    """The folder whose files belong to chapter ``name`` alone: ``book/generated/<name>``."""
    return root / "book" / "generated" / name


def put_in_place(execution: executed.Execution, name: str, root: Path = ROOT) -> None:
    """Put chapter ``name``'s ``execution`` where the build reads it: the notebook, the scorecard rows, its own folder.

    The runs it read are appended to ``$REGUTILS_RUN_LOG`` when set, as the chapter did when it ran.
    """
    from .bundle import RUN_LOG_ENV

    executed.restore(execution, root / "book" / f"{name}.ipynb",
                     {"scorecard": report.scorecard_dir(), "own": own_folder(name, root)})
    if os.environ.get(RUN_LOG_ENV):
        with open(os.environ[RUN_LOG_ENV], "a") as f:
            f.write(executed.run_log(execution.runs))


def execute_chapter(name: str, profile: str, overrides: dict, source: str, cache,
                    root: Path = ROOT) -> tuple[executed.Execution, bool]:
    """Execute chapter ``name``; its :class:`regutils.executed.Execution` and whether it may be stored.

    The kernel writes the scorecard rows to a folder of its own and logs the runs it is served;
    the chapter's own folder (:func:`own_folder`) is emptied first, so that it holds what this
    execution wrote. An execution during which one of its runs was written (trained here) is not
    stored: its page says so, and an execution that loads the run would not.
    """
    from .bundle import RUN_LOG_ENV

    shutil.rmtree(own_folder(name, root), ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"regutils-{name}-") as tmp:
        card, log = Path(tmp) / "scorecard", Path(tmp) / "runs.txt"
        log.write_text("")
        started = time.time() - 1.0  # a file's time may lag the clock by a tick
        seconds = execute(name, profile, overrides, root, source=source,
                          env={"REGUTILS_SCORECARD_DIR": str(card), RUN_LOG_ENV: str(log)})
        runs = executed.served_runs(log.read_text(), cache)
        outputs = {"scorecard": executed.read_tree(card), "own": executed.read_tree(own_folder(name, root))}
    execution = executed.Execution(notebook=(root / "book" / f"{name}.ipynb").read_text(), outputs=outputs,
                                   runs=runs, seconds=seconds, executed=utc_now(), commit=commit(root))
    return execution, not executed.written_since(runs, started)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stored_executions(keys: dict[str, str], cache) -> tuple[dict, dict]:
    """The stored executions that can be reused, by chapter, and for the others why they cannot."""
    found, why = {}, {}
    for name, key in keys.items():
        execution, why[name] = executed.lookup(executed.folder(cache.root), key, cache)
        if execution is not None:
            found[name] = execution
    return found, {n: w for n, w in why.items() if n not in found}


def execute_all(names: list[str], profile: str, per_chapter: dict, jobs: int, seconds_file: Path,
                root: Path = ROOT, reuse: bool = True) -> dict[str, Chapter]:
    """Every chapter of ``names`` at ``profile``: reused when its inputs are unchanged, else executed, ``jobs`` at a time.

    ``reuse`` False: every chapter is executed. A chapter is reused when the trace cache's
    ``chapters/`` folder holds an execution with its key (:func:`chapter_key`) whose runs are
    unchanged (:func:`regutils.executed.lookup`); its notebook and side outputs are put back in
    place. Executed chapters are stored there for the next build.

    With ``jobs`` > 1 every kernel is single-threaded: on a CPU, ``jobs`` one-thread kernels get
    more done per hour than one kernel with ``jobs`` threads. A run that two chapters need is
    trained once: the other kernel waits on its lock. A CPU run's probabilities depend on the
    thread count in their last bits only; each trace records the count
    (``meta["environment"]["threads"]``). ``seconds_file`` holds the seconds of the profile's
    earlier executions, {profile: {chapter: seconds}}: they set the order (:func:`longest_first`), and
    each chapter's time is written to it as soon as it ends, so a failed build keeps the others'.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .cache import Cache

    cache = Cache()
    context = build_context(root)
    sources = {n: (root / "notebooks" / f"{n}.md").read_text() for n in names}
    keys = {n: chapter_key(n, profile, per_chapter[n], sources[n], context) for n in names}
    found, why = stored_executions(keys, cache) if reuse else ({}, dict.fromkeys(names, "--force"))
    built = {}
    for name, execution in found.items():
        put_in_place(execution, name, root)
        built[name] = Chapter(execution, reused=True)
    if found:
        print(f"reused {len(found)} of {len(names)} chapters, their inputs unchanged: {', '.join(found)}", flush=True)

    recorded = json.loads(seconds_file.read_text()) if seconds_file.is_file() else {}
    recorded = recorded if all(isinstance(v, dict) for v in recorded.values()) else {}  # an older flat file
    seconds = recorded.setdefault(profile, {})
    lock = threading.Lock()

    def one(name):
        sys.stdout.write(f"executing {name} ({profile}): {why[name]}\n")  # one write per line: threads print at once
        sys.stdout.flush()
        execution, storable = execute_chapter(name, profile, per_chapter[name], sources[name], cache, root)
        put_in_place(execution, name, root)
        if storable:
            executed.store(executed.folder(cache.root), keys[name], execution)
        sys.stdout.write(f"  {name}: {execution.seconds:.1f} s{'' if storable else ' (runs trained: not stored)'}\n")
        sys.stdout.flush()
        with lock:
            built[name] = Chapter(execution, reused=False)
            seconds[name] = execution.seconds
            seconds_file.write_text(json.dumps(recorded, indent=1))

    # every kernel starts in the root (papermill's cwd, the same for all threads) and inherits the environment
    threads = dict(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if jobs > 1 else {}
    with contextlib.chdir(root), environment(**threads), ThreadPoolExecutor(jobs) as pool:
        futures = {name: pool.submit(one, name) for name in longest_first(list(why), seconds)}
    failed = {name: f.exception() for name, f in futures.items() if f.exception() is not None}
    for name, error in failed.items():
        print(f"  {name} failed: {type(error).__name__}: {str(error)[:2000]}", flush=True)
    if failed:
        raise RuntimeError(f"chapters {', '.join(failed)} failed at profile {profile}; the runs they trained "
                           "are cached: run the command again to continue")
    return {n: built[n] for n in names}


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


def write_intro_tables(names: list[str], profile: str, built: dict[str, Chapter], timing: dict,
                       root: Path = ROOT) -> None:
    """The intro's generated tables: tally, scorecard, recipe study, and the build page (:func:`build_markdown`).

    A table is written only when its text changed: Sphinx then reads again only the pages that include it.
    """
    out = root / "book" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    card = report.collect(out / "scorecard", names)
    tables = {"tally.md": report.tally_markdown(card, profile), "scorecard.md": report.scorecard_markdown(card),
              "recipe_study.md": recipe_markdown(root / RECIPE_STUDY),
              "recipe_curve.md": recipe_curve_markdown(root / RECIPE_STUDY.with_name("recipe_study_curve.csv")),
              "build_info.md": build_markdown(profile, names, built, timing, root)}
    for name, text in tables.items():
        executed.write_if_changed(out / name, text.encode())


def build_markdown(profile: str, names: list[str], built: dict[str, Chapter], timing: dict,
                   root: Path = ROOT) -> str:
    """The build page: profile, commit, hardware; this build's and the last cold build's times; each chapter's execution.

    ``names``: the book's chapters; ``built``: those of this build. ``timing``: :func:`record_build`'s
    ``this``, ``previous`` and ``cold`` builds of the profile.
    """
    this, previous, cold = timing["this"], timing.get("previous"), timing.get("cold")
    reused = [n for n, c in built.items() if c.reused]
    html = (f"; the HTML step of the previous build took {previous['html_seconds']:.0f} s"
            if previous and previous.get("html_seconds") is not None else "")
    if cold is None:
        cold_text = "No build that executed every chapter is recorded here (`--force` makes one)."
    else:
        cold_html = f" and {cold['html_seconds']:.0f} s for its HTML" if cold.get("html_seconds") is not None else ""
        cold_text = (f"The last cold build, which executed every chapter (commit `{cold['commit']}`, "
                     f"{cold['date'][:10]}), took {cold['chapters_seconds']:.0f} s for its chapters{cold_html}.")
    rows = "\n".join(chapter_row(n, built.get(n)) for n in names)
    return (f"Built with the **{profile}** profile from commit `{commit(root)}` on {hardware()}, Python "
            f"{platform.python_version()}, on {time.strftime('%Y-%m-%d')}.\n\n"
            f"This build executed {len(built) - len(reused)} chapters and reused {len(reused)}: a chapter is "
            "executed again when its notebook, its parameters, the package source, the data, the runs it reads or "
            "the installed libraries change (`python -m regutils book --force` executes every one). Executing and "
            f"reusing them took {this['chapters_seconds']:.0f} s of wall time, {this['jobs']} at once{html}. "
            f"{cold_text}\n\n"
            "The seconds are each chapter's wall time in the execution that produced its page: this build's for an "
            "executed chapter, the earlier one shown for a reused chapter; runs trained in that execution count, "
            "runs loaded do not.\n\n"
            f"| chapter | this build | seconds to execute | executed |\n|---|---|---|---|\n{rows}\n")


def chapter_row(name: str, chapter: Chapter | None) -> str:
    """The build page's row of chapter ``name``: executed or reused, its seconds, and when and where it ran."""
    if chapter is None:
        return f"| {name} | not in this build (`--only`) | – | an earlier build |"
    if not chapter.reused:
        return f"| {name} | executed | {chapter.execution.seconds:.1f} | this build |"
    when = chapter.execution.executed[:16].replace("T", " ")
    return f"| {name} | reused | {chapter.execution.seconds:.1f} | {when} UTC, commit `{chapter.execution.commit}` |"


def read_builds(path: Path) -> dict:
    """The builds recorded in ``path``: {profile: {"last": build, "cold": build}}; {} when none (or unreadable)."""
    try:
        builds = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return builds if isinstance(builds, dict) else {}


def record_build(path: Path, profile: str, this: dict, cold: bool) -> dict:
    """Record ``this`` build of ``profile`` in ``path`` as the last (and, ``cold``, the last cold) one.

    Returns ``this``, the ``previous`` last build and the ``cold`` build, as :func:`build_markdown` reads them.
    """
    builds = read_builds(path)
    earlier = builds.get(profile, {})
    recorded = {"last": this, "cold": this if cold else earlier.get("cold")}
    path.write_text(json.dumps(dict(builds, **{profile: recorded}), indent=1))
    return {"this": this, "previous": earlier.get("last"), "cold": recorded["cold"]}


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
    """Remove what no page uses: source maps of the theme's scripts, images no page shows (an earlier build's)."""
    for path in html.rglob("*.map"):
        path.unlink()
    pages = "".join(p.read_text(errors="replace") for p in html.rglob("*.html"))
    for image in (html / "_images").glob("*"):
        if image.name not in pages:
            image.unlink()


def build_html(root: Path = ROOT, fresh: bool = False) -> float:
    """Compile ``_build/html`` with ``jupyter-book build -W -n``; the seconds it took.

    Sphinx reads again only the pages whose sources changed when the last build succeeded with the
    same table of contents, configuration and installed distributions; otherwise, or when
    ``fresh``, it starts from an empty ``_build/html`` and reads every page. A failed build leaves
    no stamp, so the next one starts afresh and repeats the warnings of unchanged pages. Either way
    :func:`clean_html` then removes what no page uses.
    """
    out = root / "_build"
    stamp = out / "regutils-html.stamp"  # the layout of the last build that succeeded
    layout = executed.digest((root / "_toc.yml").read_text(), (root / "_config.yml").read_text(),
                             executed.distributions())
    incremental = not fresh and stamp.is_file() and stamp.read_text() == layout
    stamp.unlink(missing_ok=True)
    if not incremental:
        shutil.rmtree(out / "html", ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "-W", "-n", "--keep-going", str(root)]
    t0 = time.perf_counter()
    subprocess.run(cmd if incremental else [*cmd, "--all"], check=True)
    clean_html(out / "html")
    stamp.write_text(layout)
    return time.perf_counter() - t0


def build(profile: str = "default", only: list[str] | None = None, overrides: dict | None = None,
          html: bool = True, root: Path = ROOT, jobs: int = 1, reuse: bool = True) -> None:
    """Execute the chapters (``only``, or all) at ``profile`` and build the HTML book.

    ``jobs`` > 1: that many chapters at once, each in a single-threaded kernel (:func:`execute_all`).
    ``reuse``: reuse a chapter's stored execution when its inputs are unchanged, and let Sphinx
    rebuild only the pages that changed (:func:`build_html`); False: execute every chapter and
    build every page.
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
    generated = root / "book" / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    built = execute_all(selected, profile, per_chapter, jobs, generated / "seconds.json", root, reuse=reuse)
    this = {"date": utc_now(), "commit": commit(root), "jobs": jobs, "chapters_seconds": time.perf_counter() - t0,
            "executed": sum(not c.reused for c in built.values()), "reused": sum(c.reused for c in built.values())}
    cold = selected == names and this["reused"] == 0
    timing = record_build(generated / "builds.json", profile, this, cold)
    write_intro_tables(names, profile, built, timing, root)
    if html:
        this["html_seconds"] = build_html(root, fresh=not reuse)
        record_build(generated / "builds.json", profile, this, cold)
        print(f"book: {root / '_build' / 'html' / 'index.html'} (chapters {this['chapters_seconds']:.0f} s: "
              f"{this['executed']} executed, {this['reused']} reused; HTML {this['html_seconds']:.0f} s)")
