"""The teaching layer: objectives, summaries and exercises of the teaching chapters, the glossary, the reference pages.

These tests read sources only (notebooks/*.md, book/*.md, _toc.yml); nothing is executed.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEACHING = ["primer", "arpit", "shallow_deep", "easy_hard", "learnability"]
NEW_PAGES = ["book/glossary", "book/run_it_yourself", "book/using_regutils"]
GLOSSARY_TERMS = [
    "CBTL", "CBGL", "forgetting event", "mal-generalizing event", "never-learned sample", "density", "regularity",
    "synchronization", "long-term synchronization", "learnability", "critical sample ratio", "loss sensitivity",
    "epoch-level record", "minibatch record", "profile", "trace bundle", "scorecard verdict",
]

FENCE = re.compile(r"^(`{3,}|:{3,})(.*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")


def source(name: str) -> str:
    return (ROOT / "notebooks" / f"{name}.md").read_text()


def markdown_text(name: str) -> str:
    """The markdown cells of chapter ``name`` joined, as jupytext parses the notebook."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    return "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def sections(text: str) -> list[tuple[int, str, str]]:
    """(level, title, body) of every markdown heading outside fenced blocks; body runs to the next heading of
    the same or a higher level."""
    lines = text.splitlines()
    heads, fence = [], None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.strip() == fence:
                fence = None
            continue
        if fence is None and (h := HEADING.match(line)):
            heads.append((i, len(h.group(1)), h.group(2)))
    out = []
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[k + 1:] if lv <= level), len(lines))
        out.append((level, title, "\n".join(lines[i + 1:end])))
    return out


def section(text: str, word: str) -> str:
    found = [body for _, title, body in sections(text) if re.search(rf"\b{word}\b", title, re.I)]
    return found[0] if found else ""


def directive_blocks(text: str, name: str) -> list[tuple[str, str]]:
    """(argument, body) of every ``name`` directive in backtick or colon fences, nested ones included."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        m = re.match(r"^(`{3,}|:{3,})\{" + re.escape(name) + r"\}\s*(.*)$", line)
        if not m:
            continue
        fence = m.group(1)
        body = []
        for later in lines[i + 1:]:
            if later.strip() == fence:
                break
            body.append(later)
        blocks.append((m.group(2).strip(), "\n".join(body)))
    return blocks


def option(body: str, key: str) -> str | None:
    m = re.search(rf"^:{key}:\s*(.+?)\s*$", body, re.M)
    return m.group(1) if m else None


def objectives(text: str) -> str:
    """The learning objectives: an admonition titled so, or a section of that name."""
    for arg, body in directive_blocks(text, "admonition"):
        if arg.lower() == "learning objectives":
            return body
    return section(text, "Learning objectives")


def prose(text: str) -> str:
    """``text`` without fenced code (python, bash, code cells): the words a reader reads."""
    out, fence = [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        if m and re.match(r"\{?(python|bash|ipython3|code-cell|sh)\b", m.group(2).strip()):
            fence = m.group(1)
            continue
        out.append(line)
    return "\n".join(out)


def glossary_terms() -> set[str]:
    text = (ROOT / "book" / "glossary.md").read_text()
    blocks = directive_blocks(text, "glossary")
    assert blocks, "book/glossary.md holds no glossary directive"
    terms = set()
    for _, body in blocks:
        for line in body.splitlines():
            if line.strip() and not line[0].isspace() and not line.startswith(":"):
                terms.add(line.strip().lower())
    return terms


def term_targets(text: str) -> list[str]:
    targets = []
    for ref in TERM_ROLE.findall(text):
        m = re.search(r"<([^<>]+)>\s*$", ref)
        targets.append((m.group(1) if m else ref).strip().lower())
    return targets


@pytest.mark.parametrize("name", TEACHING)
def test_teaching_chapter_opens_with_learning_objectives(name):
    text = markdown_text(name)
    body = objectives(text)
    items = re.findall(r"^\s*[-*] ", body, re.M)
    assert 3 <= len(items) <= 5, f"{name}: {len(items)} learning objectives"
    # right after the title and its opening paragraph: before the first section and the first code cell
    src = source(name)
    first_section = re.search(r"^## ", src, re.M).start()
    first_code = src.index("```{code-cell}")
    at = src.lower().index("learning objectives")
    assert at < first_section and at < first_code, f"{name}: the objectives come after the chapter starts"


@pytest.mark.parametrize("name", TEACHING)
def test_teaching_chapter_has_a_summary_before_its_provenance(name):
    text = markdown_text(name)
    summary = section(text, "Summary")
    items = re.findall(r"^\s*[-*] ", summary, re.M)
    assert 4 <= len(items) <= 6, f"{name}: {len(items)} summary points"
    src = source(name)
    at = re.search(r"^## Summary\s*$", src, re.M).start()
    provenance = re.search(r"^## Where the runs come from", src, re.M)
    if provenance:
        assert at < provenance.start(), f"{name}: the summary comes after the provenance section"


@pytest.mark.parametrize("name", TEACHING)
def test_teaching_chapter_has_exercises_with_hidden_solutions(name):
    text = markdown_text(name)
    assert section(text, "Exercises"), f"{name}: no Exercises section"
    exercises = [option(body, "label") for _, body in directive_blocks(text, "exercise")]
    assert len(exercises) >= 2 and all(exercises), f"{name}: exercises {exercises}"
    solutions = {arg: option(body, "class") or "" for arg, body in directive_blocks(text, "solution")}
    for label in exercises:
        assert label in solutions, f"{name}: exercise {label} has no solution"
        assert "dropdown" in solutions[label].split(), f"{name}: the solution of {label} is not hidden"


def test_exercise_labels_are_unique_across_the_book():
    labels = []
    for path in sorted((ROOT / "notebooks").glob("*.md")):
        labels += [option(body, "label") for _, body in directive_blocks(path.read_text(), "exercise")]
    for path in sorted((ROOT / "book").glob("*.md")):
        labels += [option(body, "label") for _, body in directive_blocks(path.read_text(), "exercise")]
    duplicates = {label for label in labels if labels.count(label) > 1}
    assert labels and not duplicates, duplicates


@pytest.mark.parametrize("name", [n for n in TEACHING if n != "primer"])
def test_new_exercise_labels_name_their_chapter(name):
    labels = [option(body, "label") for _, body in directive_blocks(markdown_text(name), "exercise")]
    prefix = "ex-" + name.replace("_", "-") + "-"
    assert all(label.startswith(prefix) for label in labels), labels


def test_glossary_defines_every_term():
    terms = glossary_terms()
    missing = [t for t in GLOSSARY_TERMS if t.lower() not in terms]
    assert not missing, missing


def test_glossary_states_the_books_definitions():
    text = (ROOT / "book" / "glossary.md").read_text()
    for needle in ["acc_i^0 = 0", r"\sum_{t=1}^{T} acc_i^t", "acc_i^{t-1} = 1 \\wedge acc_i^t = 0",
                   r"\pi r^2", r"r = \sqrt{(x/30)^2 + (y/30)^2}", "$r = 1$", "*any*", "*all*", "scores *any*",
                   "*Reproduced*", "*Not reproduced*", "*Not comparable*", "*Context*"]:
        assert needle in text, needle


def test_every_term_reference_names_a_glossary_entry():
    terms = glossary_terms()
    pages = sorted((ROOT / "notebooks").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))
    unknown = {(p.name, t) for p in pages for t in term_targets(p.read_text()) if t not in terms}
    assert not unknown, unknown


@pytest.mark.parametrize("name", TEACHING)
def test_the_new_sections_link_terms_to_the_glossary(name):
    text = markdown_text(name)
    assert term_targets(objectives(text) + section(text, "Summary")), name


def test_the_new_pages_are_in_the_reference_part_of_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    reference = next(part for part in toc["parts"] if part["caption"] == "Reference")
    files = [chapter["file"] for chapter in reference["chapters"]]
    assert files[:4] == NEW_PAGES + ["book/crosswalk"], files
    for page in NEW_PAGES:
        assert (ROOT / f"{page}.md").is_file(), page


@pytest.mark.parametrize("name", TEACHING)
def test_no_api_names_in_the_prose_of_the_new_sections(name):
    text = markdown_text(name)
    new = prose(objectives(text) + "\n" + section(text, "Summary") + "\n" + section(text, "Exercises"))
    assert "regutils." not in new, name
    calls = re.findall(r"`[^`\n]*\b[A-Za-z]\w*_\w*\(", new)
    assert not calls, (name, calls)


def test_the_reference_pages_put_code_in_plain_blocks():
    for page in ["run_it_yourself", "using_regutils"]:
        text = (ROOT / "book" / f"{page}.md").read_text()
        assert "{code-cell}" not in text, page
        assert re.search(r"^```(python|bash)\s*$", text, re.M), page


def test_every_chapter_labels_its_scorecard_section_for_the_intros_links():
    for path in sorted((ROOT / "notebooks").glob("*.md")):
        text = path.read_text()
        assert re.search(rf"^\({path.stem}-scorecard\)=\n## (Paper|The source) vs this build$", text, re.M), path.stem
