"""The "paper vs this build" tables of the chapters, and the scorecard that gathers them.

    from regutils.claims import at_least, within
    from regutils.report import Scorecard
    card = Scorecard("setup", setting=s.describe())
    card.add("Pearson of CBTL, epoch vs minibatch record", paper=0.9896, value=corr,   # corr: stats.Corr
             test=at_least(0.98))
    card.add("Ratio of inference counts", paper="1/390", value="1/11")                 # no test: context
    card.add("gain at 50,000 samples", paper=0.1, value=g, test=above(0),
             comparable="the profile has 1,017 test samples")                         # not comparable here
    card.table()        # a Styler for the page; also written to <dir>/setup.csv
    card.summary()      # Markdown: one line per claim with its verdict, for the chapter's prose
    card.verdict("Pearson of CBTL, epoch vs minibatch record")    # "reproduced", ...

Each row states the paper's claim as a tested predicate (:mod:`regutils.claims`) and gets a
computed verdict: reproduced, not reproduced, not comparable at this profile, or context (a row
with no test, never counted). Each chapter writes its rows to ``$REGUTILS_SCORECARD_DIR``
(default ``book/generated/scorecard``); the book build joins them into the intro's scorecard,
which opens with "N of M claims reproduced".

:func:`table` styles every other table of the pages: numbers formatted, units in the headers, a
missing value shown as an em dash.
"""
from __future__ import annotations

import dataclasses
import html
import math
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import CONTEXT, Tally, Test, verdict

COLUMNS = ["chapter", "quantity", "paper", "test", "this build", "interval", "verdict", "setting"]


#: how a missing value reads in a page's table
MISSING = "\u2014"
#: the CSS of every table on the pages: compact, numbers in aligned columns, headers wrapped
TABLE_STYLES = [
    {"selector": "", "props": [("font-size", "0.85em"), ("border-collapse", "collapse"),
                               ("font-variant-numeric", "tabular-nums")]},
    {"selector": "th, td", "props": [("padding", "0.2em 0.4em"), ("border-bottom", "1px solid #ddd")]},
    {"selector": "th", "props": [("white-space", "normal"), ("text-align", "left"), ("vertical-align", "bottom")]},
    {"selector": "td", "props": [("text-align", "right")]},
]


def yes_no(value) -> str:
    return "yes" if value else "no"


def default_format(values: pd.Series):
    """The format of a column without one: whole numbers with thousands separators, other numbers to three
    decimals, booleans as yes / no, anything else (text) as it is."""
    present = values.dropna().tolist()
    if present and all(isinstance(v, bool) for v in present):
        return yes_no
    if not present or not all(isinstance(v, numbers.Real) for v in present):
        return "{}"
    whole = all(float(v).is_integer() for v in present) and (pd.api.types.is_integer_dtype(values) or any(present))
    return "{:,.0f}" if whole else "{:,.3f}"


def table(df: pd.DataFrame, formats: dict | None = None, units: dict | None = None, index: bool = True):
    """``df`` for a page: a Styler with every table's CSS (:data:`TABLE_STYLES`), numbers formatted, units in
    the headers and missing values shown as :data:`MISSING`.

    formats: {column: format string, e.g. "{:.1%}" for a fraction shown as a percentage}; other numeric
    columns get :func:`default_format` (integer-valued ones with thousands separators, others three
    decimals), text stays as it is. units: {column: unit}, written into the header as "column (unit)".
    index False hides the row labels.
    """
    formats, units = formats or {}, units or {}
    unknown = (set(formats) | set(units)) - set(df.columns)
    if unknown:
        raise KeyError(f"no such column: {sorted(unknown, key=str)}")
    shown = {column: formats.get(column) or default_format(df[column]) for column in df.columns}
    df = df.rename(columns={c: f"{c} ({u})" for c, u in units.items()})
    shown = {f"{c} ({units[c]})" if c in units else c: f for c, f in shown.items()}
    text = [c for c, f in shown.items() if f in ("{}", yes_no)]
    styler = (df.style.format(shown, na_rep=MISSING).set_table_styles(TABLE_STYLES)
              .set_properties(subset=text, **{"text-align": "left"}))
    return styler if index else styler.hide(axis="index")


def deviation(text: str) -> str:
    """Markdown for a page: ``text`` in a box titled "Deviation from the paper" (the theme's admonition, raw HTML)."""
    return (f'<div class="admonition warning"><p class="admonition-title">Deviation from the paper</p>'
            f"<p>{html.escape(text)}</p></div>")


def scorecard_dir() -> Path:
    return Path(os.environ.get("REGUTILS_SCORECARD_DIR", "book/generated/scorecard"))


def _fmt(x) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.4f}"


class Scorecard:
    def __init__(self, chapter: str, setting: str):
        self.chapter, self.setting, self.rows = chapter, setting, []

    def add(self, quantity: str, paper, value, test: Test | None = None, setting: str | None = None,
            comparable: bool | str = True) -> None:
        """One row (nothing returned: a chapter cell that ends with it shows nothing).

        ``value`` may be a number, a boolean, a string or a correlation with ``r, low, high``;
        ``test`` the claim as a predicate on it (None: a context row, not a claim);
        ``comparable`` False or a reason string: this profile cannot test the claim.
        """
        if any(row["quantity"] == quantity for row in self.rows):
            raise ValueError(f"chapter {self.chapter!r} already has a row {quantity!r}")
        interval = ""
        if hasattr(value, "r"):
            if not (math.isnan(value.low) or math.isnan(value.high)):
                interval = f"[{value.low:.4f}, {value.high:.4f}]"
        outcome = verdict(test, value, comparable)
        test_text = "" if test is None else test.text
        if isinstance(comparable, str):
            test_text += f" (not testable here: {comparable})"
        self.rows.append({"chapter": self.chapter, "quantity": quantity, "paper": _fmt(paper),
                          "test": test_text, "this build": _fmt(getattr(value, "r", value)),
                          "interval": interval, "verdict": outcome, "setting": setting or self.setting})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def verdict(self, quantity: str) -> str:
        """The verdict of the row named ``quantity``."""
        for row in self.rows:
            if row["quantity"] == quantity:
                return row["verdict"]
        raise KeyError(f"chapter {self.chapter!r} has no row {quantity!r}")

    def tally(self) -> Tally:
        return Tally.of(row["verdict"] for row in self.rows)

    def summary(self) -> str:
        """Markdown for the chapter's prose: the count, then one line per claim with its verdict."""
        lines = [self.tally().sentence()]
        for row in self.rows:
            if row["verdict"] == CONTEXT:
                continue
            interval = f" {row['interval']}" if row["interval"] else ""
            lines.append(f"- *{row['verdict']}*: {row['quantity']}: paper {row['paper']}, "
                         f"this build {row['this build']}{interval}; claim: {row['test']}.")
        return "\n".join(lines)

    def table(self, write: bool = True):
        """The rows for the page (a Styler: full text, no index); ``write`` also saves the chapter's CSV."""
        df = self.frame()
        if write:
            out = scorecard_dir()
            out.mkdir(parents=True, exist_ok=True)
            df.to_csv(out / f"{self.chapter}.csv", index=False)
        return table(df.drop(columns="chapter"), index=False)


def collect(directory: str | os.PathLike, order: list[str]) -> pd.DataFrame:
    """All chapters' rows, in the book's order of chapters."""
    directory = Path(directory)
    frames = [pd.read_csv(directory / f"{c}.csv", dtype=str, keep_default_na=False)
              for c in order if (directory / f"{c}.csv").is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def tally_markdown(card: pd.DataFrame, profile: str) -> str:
    """The intro's opening count: "N of M claims reproduced at this profile"."""
    if not len(card):
        return "No chapter has run yet.\n"
    return Tally.of(card["verdict"]).sentence(profile) + "\n"


def chapter_link(chapter: str) -> str:
    """The scorecard's link to ``chapter``'s "vs this build" section, labelled ``(<chapter>-scorecard)=`` there."""
    return f"{{ref}}`{chapter} <{chapter}-scorecard>`"


def scorecard_markdown(card: pd.DataFrame) -> str:
    """The intro's scorecard: every chapter's rows, each linked to its chapter (:func:`chapter_link`)."""
    if not len(card):
        return "No chapter has run yet.\n"
    card = card.copy()
    card = card.apply(lambda col: col.str.replace("|", "\\|", regex=False))  # a pipe would split a cell
    card["chapter"] = [chapter_link(c) for c in card["chapter"]]
    return card.to_markdown(index=False) + "\n"


def describe_runs(s, runs) -> str:
    """One line for a chapter's opening: the settings ``s`` (with the number of ``runs`` shown) and the final
    test accuracy of each of ``runs``."""
    acc = np.asarray(runs.history["test_acc"]).reshape(-1, runs.epochs)[:, -1]
    shown = dataclasses.replace(s, runs=len(acc))  # a chapter may use fewer or more runs than the profile's main ones
    return f"{shown.describe()}; final test accuracy per run {np.round(acc, 4).tolist()}, mean {acc.mean():.4f}"
