"""The cache of executed chapters (regutils.executed, regutils.book.execute_all) and the incremental HTML step.

No book is built: the chapters live in a temporary root and the executor is replaced by a fake that
writes a notebook, a scorecard row, a file of the chapter's own folder and a served run, and counts
its calls. One test executes a tiny notebook in a real kernel.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from regutils import book, executed
from regutils.trace import write_sealed

RUN = "0123456789abcdef0123"  # the run key the fake chapter is served


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A book root with one chapter ``alpha`` and a package; the cache, scorecard folder and no bundle set."""
    r = tmp_path / "root"
    (r / "notebooks").mkdir(parents=True)
    (r / "notebooks" / "alpha.md").write_text("# Alpha\n")
    (r / "regutils").mkdir()
    (r / "regutils" / "module.py").write_text("X = 1\n")
    (r / "book").mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    run = cache / f"{RUN}.npz"
    run.write_bytes(b"a trace")
    os.utime(run, (1e9, 1e9))  # written long before any execution
    monkeypatch.setenv("REGUTILS_CACHE", str(cache))
    monkeypatch.delenv("REGUTILS_BUNDLE", raising=False)
    monkeypatch.delenv("REGUTILS_RUN_LOG", raising=False)
    monkeypatch.setenv("REGUTILS_SCORECARD_DIR", str(r / "book" / "generated" / "scorecard"))
    monkeypatch.setattr(book, "data_fingerprint", lambda profile, overrides: "data-1")
    return r


@pytest.fixture
def calls(monkeypatch):
    """The chapters the fake executor ran, in order; it writes what a chapter writes."""
    ran = []

    def fake_execute(name, profile, overrides, root, progress=False, source=None, env=None):
        ran.append(name)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=f"execution {len(ran)}\n")])])
        nbformat.write(nb, root / "book" / f"{name}.ipynb")
        card = Path(env["REGUTILS_SCORECARD_DIR"])
        card.mkdir(parents=True, exist_ok=True)
        (card / f"{name}.csv").write_text(f"chapter,quantity\n{name},row of execution {len(ran)}\n")
        (root / "book" / "generated" / name).mkdir(parents=True, exist_ok=True)
        (root / "book" / "generated" / name / "subset.csv").write_text(f"execution {len(ran)}\n")
        with open(env["REGUTILS_RUN_LOG"], "a") as f:
            f.write(f"trace {RUN}\n")
        return 1.5

    monkeypatch.setattr(book, "execute", fake_execute)
    return ran


def build(root: Path, overrides: dict | None = None, reuse: bool = True) -> dict:
    return book.execute_all(["alpha"], "smoke", {"alpha": overrides or {}}, 1, root / "seconds.json", root,
                            reuse=reuse)


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "chapters").glob("alpha-*.json"))


def test_an_unchanged_chapter_is_reused_with_its_notebook(root, calls):
    first = build(root)
    notebook = (root / "book" / "alpha.ipynb").read_text()
    (root / "book" / "alpha.ipynb").unlink()
    second = build(root)
    assert calls == ["alpha"]
    assert not first["alpha"].reused and second["alpha"].reused
    assert (root / "book" / "alpha.ipynb").read_text() == notebook
    assert second["alpha"].execution.seconds == 1.5  # the time of the execution that produced it


@pytest.mark.parametrize("change", ["notebook", "parameter", "package", "data", "run"])
def test_a_changed_input_executes_the_chapter_again(root, calls, monkeypatch, change):
    build(root)
    overrides = {}
    if change == "notebook":
        (root / "notebooks" / "alpha.md").write_text("# Alpha, revised\n")
    elif change == "parameter":
        overrides = {"epochs": 3}
    elif change == "package":
        (root / "regutils" / "module.py").write_text("X = 2\n")
    elif change == "data":
        monkeypatch.setattr(book, "data_fingerprint", lambda profile, overrides: "data-2")
    else:  # the run the chapter read was trained again
        run = Path(os.environ["REGUTILS_CACHE"]) / f"{RUN}.npz"
        run.write_bytes(b"another trace")
        os.utime(run, (1e9, 1e9))
    again = build(root, overrides)
    assert calls == ["alpha", "alpha"] and not again["alpha"].reused


def test_force_executes_a_chapter_whose_inputs_are_unchanged(root, calls):
    build(root)
    assert not build(root, reuse=False)["alpha"].reused
    assert calls == ["alpha", "alpha"]


def test_a_tampered_execution_is_refused_and_the_chapter_executed_again(root, calls):
    build(root)
    [entry] = entries(Path(os.environ["REGUTILS_CACHE"]))
    entry.write_bytes(entry.read_bytes().replace(b"execution 1", b"execution 9"))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        again = build(root)
    assert calls == ["alpha", "alpha"] and not again["alpha"].reused
    assert "execution 2" in (root / "book" / "alpha.ipynb").read_text()
    assert list(entry.parent.glob("alpha-*.corrupt-*"))  # moved aside, kept for inspection


@pytest.mark.parametrize("damage", ["notebook", "path", "json"])
def test_a_sealed_but_malformed_execution_is_refused(root, calls, damage):
    build(root)
    [entry] = entries(Path(os.environ["REGUTILS_CACHE"]))
    key = entry.stem
    content = json.loads(executed.load(entry.parent, key).to_json())
    if damage == "notebook":
        content["notebook"] = '{"cells": "not a list"}'
    elif damage == "path":
        content["outputs"]["own"] = {"../../escaped.txt": "eA=="}
    payload = b"[1, 2" if damage == "json" else json.dumps(content).encode()
    write_sealed(entry, payload, key)  # sealed by whoever can write the cache: the seal alone proves nothing
    with pytest.warns(UserWarning, match="moved aside"):
        again = build(root)
    assert calls == ["alpha", "alpha"] and not again["alpha"].reused
    assert not (root / "book" / "escaped.txt").exists()


def test_a_reused_chapter_restores_its_scorecard_and_own_files(root, calls):
    build(root)
    generated = root / "book" / "generated"
    card = (generated / "scorecard" / "alpha.csv").read_text()
    (generated / "scorecard" / "alpha.csv").unlink()
    (generated / "alpha" / "subset.csv").unlink()
    (generated / "alpha" / "stale.npy").write_bytes(b"an earlier build's")
    assert build(root)["alpha"].reused
    assert (generated / "scorecard" / "alpha.csv").read_text() == card
    assert [p.name for p in (generated / "alpha").iterdir()] == ["subset.csv"]
    assert (generated / "alpha" / "subset.csv").read_text() == "execution 1\n"


def test_a_chapter_writes_files_only_to_its_own_folder():
    from regutils.chapters import testing

    assert testing.OUT_DIR == book.own_folder("testing", Path("."))  # what a reuse puts back


def test_each_chapter_keeps_its_most_recently_used_executions(tmp_path):
    execution = executed.Execution(notebook=nbformat.writes(nbformat.v4.new_notebook()), outputs={}, runs=(),
                                   seconds=1.0, executed="2026-01-01T00:00:00Z", commit="abc")
    keys = [f"alpha-{i:032x}" for i in range(4)]
    for age, key in enumerate(keys[:3]):
        path = executed.store(tmp_path, key, execution)
        os.utime(path, (1e9 + age, 1e9 + age))
    executed.store(tmp_path, "alpha_beta-" + "f" * 32, execution)  # another chapter's: not counted
    assert executed.lookup(tmp_path, keys[0], None)[0] == execution  # used now: the most recent
    executed.store(tmp_path, keys[3], execution)
    kept = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert kept == sorted([keys[0], keys[2], keys[3], "alpha_beta-" + "f" * 32])


def test_a_reused_chapter_logs_the_runs_it_read(root, calls, monkeypatch, tmp_path):
    build(root)
    log = tmp_path / "runlog.txt"
    log.write_text("")
    monkeypatch.setenv("REGUTILS_RUN_LOG", str(log))
    assert build(root)["alpha"].reused
    assert log.read_text() == f"trace {RUN}\n"  # what `regutils traces` exports


def test_an_execution_that_trained_a_run_is_not_stored(root, calls, monkeypatch):
    fake = book.execute

    def training(*args, **kwargs):
        os.utime(Path(os.environ["REGUTILS_CACHE"]) / f"{RUN}.npz")  # written during the chapter: trained there
        return fake(*args, **kwargs)

    monkeypatch.setattr(book, "execute", training)
    build(root)
    assert not entries(Path(os.environ["REGUTILS_CACHE"]))
    assert not build(root)["alpha"].reused


def test_the_build_page_labels_reused_chapters_with_their_execution(root, calls):
    build(root)
    built = build(root)
    timing = {"this": {"chapters_seconds": 2.0, "jobs": 2}, "previous": {"html_seconds": 30.0},
              "cold": {"commit": "abc1234", "date": "2026-01-02T03:04:05Z", "chapters_seconds": 250.0,
                       "html_seconds": 60.0}}
    page = book.build_markdown("smoke", ["alpha", "beta"], built, timing, root)
    execution = built["alpha"].execution
    assert f"| alpha | reused | 1.5 | {execution.executed[:10]}" in page and f"commit `{execution.commit}`" in page
    assert "| beta | not in this build" in page
    assert "executed 0 chapters and reused 1" in page
    assert "took 250 s for its chapters and 60 s for its HTML" in page and "commit `abc1234`" in page
    assert "the HTML step of the previous build took 30 s" in page
    assert "from commit `" in page


def test_record_build_keeps_the_last_cold_build(tmp_path):
    path = tmp_path / "builds.json"
    cold = {"date": "d1", "chapters_seconds": 250.0}
    book.record_build(path, "default", cold, cold=True)
    warm = {"date": "d2", "chapters_seconds": 5.0}
    timing = book.record_build(path, "default", warm, cold=False)
    assert timing == {"this": warm, "previous": cold, "cold": cold}


@pytest.fixture
def html_root(tmp_path, monkeypatch):
    """A root with a table of contents and a stand-in for jupyter-book that records its commands."""
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    commands = []

    def fake_run(cmd, check):
        commands.append(cmd)
        (tmp_path / "_build" / "html" / "_images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "_build" / "html" / "index.html").write_text('<img src="_images/new.png">')

    monkeypatch.setattr(subprocess, "run", fake_run)
    return tmp_path, commands


def test_html_is_rebuilt_incrementally_only_after_a_success_with_the_same_layout(html_root, monkeypatch):
    root, commands = html_root
    book.build_html(root)
    book.build_html(root)
    (root / "_toc.yml").write_text("root: intro\nchapters: [a]\n")
    book.build_html(root)
    book.build_html(root, fresh=True)
    assert ["--all" in cmd for cmd in commands] == [True, False, True, True]

    def failing(cmd, check):
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(subprocess.CalledProcessError):
        book.build_html(root)
    monkeypatch.undo()
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: commands.append(cmd))
    book.build_html(root)
    assert "--all" in commands[-1]  # after a failure, every page is read again (and warns again)


def test_an_incremental_build_leaves_no_image_of_an_earlier_build(html_root):
    root, _ = html_root
    book.build_html(root)
    images = root / "_build" / "html" / "_images"
    (images / "old.png").write_bytes(b"a figure a chapter no longer draws")
    book.build_html(root)
    assert [p.name for p in images.iterdir()] == []  # new.png was never written by the stand-in
    (images / "new.png").write_bytes(b"shown")
    book.build_html(root)
    assert [p.name for p in images.iterdir()] == ["new.png"]


def test_the_kernel_gets_the_chapters_own_environment(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks" / "tiny.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\nprofile = 'x'\noverrides = {}\n```\n\n"
        "```{code-cell} ipython3\nimport os\nprint(os.environ['REGUTILS_SCORECARD_DIR'], profile)\n```\n")
    monkeypatch.setenv("REGUTILS_SCORECARD_DIR", "shared")
    book.execute("tiny", "smoke", {}, tmp_path, env={"REGUTILS_SCORECARD_DIR": "its own"})
    nb = nbformat.read(tmp_path / "book" / "tiny.ipynb", as_version=4)
    assert nb.cells[-1].outputs[0]["text"] == "its own smoke\n"
    assert os.environ["REGUTILS_SCORECARD_DIR"] == "shared"
