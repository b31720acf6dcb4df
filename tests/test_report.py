import math

import numpy as np
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


# --- report.table: every other table of the pages -----------------------------------------------------


def _cells(styler) -> list[list[str]]:
    """The shown text of each body cell of a styled table, row by row."""
    import re

    html = styler.to_html()
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1], re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>.*?</td>", row, re.S)] for row in rows]


def _headers(styler) -> list[str]:
    import re

    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th[^>]*col_heading[^>]*>.*?</th>', styler.to_html())]


def test_table_formats_whole_numbers_with_separators_and_fractions_to_three_decimals():
    from regutils.report import table

    df = pd.DataFrame({"samples": [1000, 50000], "accuracy": [0.91234, 0.5], "epochs": [3.0, 20.0],
                       "name": ["a", "b"], "lower": [True, False]})
    assert _cells(table(df)) == [["1,000", "0.912", "3", "a", "yes"], ["50,000", "0.500", "20", "b", "no"]]


def test_table_applies_given_formats_and_writes_units_into_the_headers():
    from regutils.report import table

    df = pd.DataFrame({"share": [0.1234, 1.0], "time": [1.23456, 12.5]})
    styler = table(df, formats={"share": "{:.1%}", "time": "{:.1f}"}, units={"time": "s"})
    assert _headers(styler) == ["share", "time (s)"]
    assert _cells(styler) == [["12.3%", "1.2"], ["100.0%", "12.5"]]
    assert styler.data.columns.tolist() == ["share", "time (s)"]  # the values themselves are kept
    with pytest.raises(KeyError, match="speed"):
        table(df, units={"speed": "s"})


def test_table_shows_a_missing_value_as_a_dash_never_as_nan():
    from regutils.report import MISSING, table

    df = pd.DataFrame({"paper": [0.9871, float("nan")], "n": [None, 3], "note": ["x", None]})
    cells = _cells(table(df, formats={"paper": "{:.4f}"}))
    assert cells == [["0.9871", MISSING, "x"], [MISSING, "3", MISSING]]
    assert not any("nan" in c.lower() or "none" in c.lower() for row in cells for c in row)


def test_table_hides_the_index_on_request_and_aligns_text_left_numbers_right():
    from regutils.report import table

    df = pd.DataFrame({"v": [1.5]}, index=["row label"])
    assert "row label" in table(df).to_html() and "row label" not in table(df, index=False).to_html()
    html = table(pd.DataFrame({"name": ["x"], "v": [1.5]})).to_html()
    assert "text-align: left" in html and "text-align: right" in html


def test_deviation_is_a_titled_box_with_its_text_escaped():
    from regutils.report import deviation

    box = deviation("weights <missing> & no network")
    assert 'class="admonition warning"' in box and "Deviation from the paper" in box
    assert "weights &lt;missing&gt; &amp; no network" in box


def test_describe_runs_names_the_runs_it_is_given_not_the_profiles_count():
    from regutils.profiles import settings
    from regutils.report import describe_runs
    from regutils.trace import Trace

    s = settings("smoke")
    acc = np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]])  # 3 runs of 2 epochs
    runs = Trace(*(np.zeros((3, 2, 1)) for _ in range(6)), *(np.zeros(1) for _ in range(5)),
                 history={"test_acc": acc})
    line = describe_runs(s, runs)
    assert s.runs != 3 and "3 runs" in line and f"{s.runs} runs" not in line
    assert "[0.4, 0.5, 0.6], mean 0.5000" in line
