"""The "paper vs this build" tables of the chapters, and the scorecard that gathers them.

    from regutils.report import Scorecard
    card = Scorecard("setup", setting=s.describe())
    card.add("Pearson of CBTL, epoch vs minibatch record", paper=0.9896, value=corr)   # corr: stats.Corr
    card.add("Ratio of inference counts", paper="1/390", value="1/11")
    card.table()        # a DataFrame for the page; also written to <dir>/setup.csv

Each chapter writes its rows to ``$REGUTILS_SCORECARD_DIR`` (default
``book/generated/scorecard``); the book build joins them into the
intro's scorecard.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

COLUMNS = ["chapter", "quantity", "paper", "this build", "interval", "setting"]


def scorecard_dir() -> Path:
    return Path(os.environ.get("REGUTILS_SCORECARD_DIR", "book/generated/scorecard"))


def _fmt(x) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int):
        return str(x)
    return f"{x:.4f}"


class Scorecard:
    def __init__(self, chapter: str, setting: str):
        self.chapter, self.setting, self.rows = chapter, setting, []

    def add(self, quantity: str, paper, value, setting: str | None = None) -> "Scorecard":
        """One row; ``value`` may be a number, a string or a correlation with ``r, low, high``."""
        interval = ""
        if hasattr(value, "r"):
            if not (math.isnan(value.low) or math.isnan(value.high)):
                interval = f"[{value.low:.4f}, {value.high:.4f}]"
            value = value.r
        self.rows.append({"chapter": self.chapter, "quantity": quantity, "paper": _fmt(paper),
                          "this build": _fmt(value), "interval": interval,
                          "setting": setting or self.setting})
        return self

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def table(self, write: bool = True):
        """The rows for the page (a Styler: full text, no index); ``write`` also saves the chapter's CSV."""
        df = self.frame()
        if write:
            out = scorecard_dir()
            out.mkdir(parents=True, exist_ok=True)
            df.to_csv(out / f"{self.chapter}.csv", index=False)
        return df.drop(columns="chapter").style.hide(axis="index")


def collect(directory: str | os.PathLike, order: list[str]) -> pd.DataFrame:
    """All chapters' rows, in the book's order of chapters."""
    directory = Path(directory)
    frames = [pd.read_csv(directory / f"{c}.csv", dtype=str, keep_default_na=False)
              for c in order if (directory / f"{c}.csv").is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
