import math

import pandas as pd
import pytest

from regutils.report import COLUMNS, Scorecard, collect
from regutils.stats import Corr


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("REGUTILS_SCORECARD_DIR", str(tmp_path))
    return tmp_path


def test_rows_format_numbers_strings_and_correlations(out):
    card = Scorecard("setup", setting="digits")
    card.add("a", paper=0.9896, value=Corr(0.5, 0.25, 0.75, 10))
    card.add("b", paper="1/390", value="1/11", setting="other")
    card.add("c", paper=None, value=float("nan"))
    card.add("d", paper=3, value=0.123456)
    df = card.frame()
    assert list(df.columns) == COLUMNS
    assert df["this build"].tolist() == ["0.5000", "1/11", "n/a", "0.1235"]
    assert df["interval"].tolist() == ["[0.2500, 0.7500]", "", "", ""]
    assert df["paper"].tolist() == ["0.9896", "1/390", "n/a", "3"]
    assert df["setting"].tolist() == ["digits", "other", "digits", "digits"]


def test_interval_left_empty_without_bootstrap(out):
    card = Scorecard("x", setting="s").add("q", paper=1.0, value=Corr(0.9, math.nan, math.nan, 5))
    assert card.frame()["interval"].tolist() == [""]


def test_table_writes_csv_and_collect_keeps_book_order(out):
    Scorecard("second", "s").add("q2", 1, 2).table()
    Scorecard("first", "s").add("q1", 1, 2).table()
    assert (out / "first.csv").is_file() and (out / "second.csv").is_file()
    df = collect(out, ["first", "missing", "second"])
    assert df["chapter"].tolist() == ["first", "second"]
    assert df["quantity"].tolist() == ["q1", "q2"]
    assert collect(out, ["missing"]).empty


def test_table_for_the_page_hides_the_chapter_column(out):
    styler = Scorecard("c", "s").add("q", 1, 2).table(write=False)
    assert "chapter" not in styler.data.columns
    assert not (out / "c.csv").exists()
    assert isinstance(styler.data, pd.DataFrame)
