import math

import pandas as pd
import pytest

from regutils.book import chapters
from regutils.claims import above, at_least, within
from regutils.report import COLUMNS, Scorecard, chapter_link, collect, scorecard_markdown, tally_markdown
from regutils.stats import Corr


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("REGUTILS_SCORECARD_DIR", str(tmp_path))
    return tmp_path


def test_rows_format_numbers_strings_correlations_and_booleans(out):
    card = Scorecard("setup", setting="digits")
    card.add("a", paper=0.9896, value=Corr(0.5, 0.25, 0.75, 10))
    card.add("b", paper="1/390", value="1/11", setting="other")
    card.add("c", paper=None, value=float("nan"))
    card.add("d", paper=3, value=0.123456)
    card.add("e", paper="yes", value=True)
    df = card.frame()
    assert list(df.columns) == COLUMNS
    assert df["this build"].tolist() == ["0.5000", "1/11", "n/a", "0.1235", "yes"]
    assert df["interval"].tolist() == ["[0.2500, 0.7500]", "", "", "", ""]
    assert df["paper"].tolist() == ["0.9896", "1/390", "n/a", "3", "yes"]
    assert df["setting"].tolist() == ["digits", "other", "digits", "digits", "digits"]
    assert set(df["verdict"]) == {"context"}


def test_rows_carry_their_test_and_computed_verdict(out):
    card = Scorecard("robustness", setting="s")
    card.add("min Pearson", paper="> 0.88", value=Corr(0.91, 0.9, 0.92, 100), test=at_least(0.88))
    card.add("other pair", paper="> 0.88", value=0.80, test=at_least(0.88))
    card.add("contains", paper=0.9835, value=Corr(0.97, 0.96, 0.99, 100), test=within(0.9835))
    card.add("too small", paper=0.1, value=0.5, test=above(0), comparable="1,017 test samples")
    df = card.frame()
    assert df["verdict"].tolist() == ["reproduced", "not reproduced", "reproduced", "not comparable"]
    assert df["test"].tolist()[:2] == ["≥ 0.88", "≥ 0.88"]
    assert "not testable here: 1,017 test samples" in df["test"].iloc[3]
    assert card.verdict("other pair") == "not reproduced"
    with pytest.raises(KeyError):
        card.verdict("missing")
    with pytest.raises(ValueError, match="already has a row"):
        card.add("other pair", paper=1, value=1)
    summary = card.summary()
    assert summary.startswith("**2 of 4 claims reproduced**")
    assert "- *not reproduced*: other pair: paper > 0.88, this build 0.8000; claim: ≥ 0.88." in summary


def test_interval_left_empty_without_bootstrap(out):
    card = Scorecard("x", setting="s")
    card.add("q", paper=1.0, value=Corr(0.9, math.nan, math.nan, 5))
    assert card.frame()["interval"].tolist() == [""]


def test_table_writes_csv_and_collect_keeps_book_order(out):
    second = Scorecard("second", "s")
    second.add("q2", 1, 2, test=above(3))
    second.table()
    first = Scorecard("first", "s")
    first.add("q1", 1, 2, test=above(1))
    first.table()
    assert (out / "first.csv").is_file() and (out / "second.csv").is_file()
    df = collect(out, ["first", "missing", "second"])
    assert df["chapter"].tolist() == ["first", "second"]
    assert df["quantity"].tolist() == ["q1", "q2"]
    assert collect(out, ["missing"]).empty
    assert tally_markdown(df, "smoke").startswith("**1 of 2 claims reproduced** at the **smoke** profile")
    md = scorecard_markdown(df)
    assert "{ref}`first <first-scorecard>`" in md and "{ref}`second <second-scorecard>`" in md
    assert tally_markdown(collect(out, ["missing"]), "smoke") == "No chapter has run yet.\n"


def test_pipes_in_cells_are_escaped_but_not_in_links(out):
    card = Scorecard("c", "s")
    card.add("a | b", 1, 2)
    card.table()
    md = scorecard_markdown(collect(out, ["c"]))
    assert "a \\| b" in md and "{ref}`c <c-scorecard>`" in md


def _table_rows(md):
    """The body rows of a Markdown table, each as its list of cells (escaped pipes kept inside a cell)."""
    lines = md.strip().splitlines()[2:]  # header and alignment rows
    return [[cell.strip() for cell in line.strip().strip("|").replace("\\|", "\0").split("|")] for line in lines]


def test_scorecard_links_every_row_to_its_chapter(out):
    names = chapters()  # the book's pages: the book/<name> entries of _toc.yml that have a chapter source
    assert names, "the book has chapters"
    for i, name in enumerate(names):
        card = Scorecard(name, "s")
        for j in range(1 + i % 3):  # chapters with one, two and three rows
            card.add(f"claim {j} | of {name}", paper=1, value=2, test=above(1))
        card.table()
    df = collect(out, names)
    rows = _table_rows(scorecard_markdown(df))
    assert len(rows) == len(df)
    for cells, (_, row) in zip(rows, df.iterrows()):
        assert cells[0] == chapter_link(row["chapter"]) == f"{{ref}}`{row['chapter']} <{row['chapter']}-scorecard>`"
        assert cells[1].replace("\0", "|") == row["quantity"]


def test_table_for_the_page_hides_the_chapter_column(out):
    card = Scorecard("c", "s")
    card.add("q", 1, 2)
    styler = card.table(write=False)
    assert "chapter" not in styler.data.columns
    assert not (out / "c.csv").exists()
    assert isinstance(styler.data, pd.DataFrame)
