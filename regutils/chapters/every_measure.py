"""One trace, every measure: the paper's measures and the other tools' scores on the same runs, side by side.

    from regutils.chapters import every_measure as em
    runs = get_runs(s.run_config(record_scores=True), p.score_runs, device=s.device)
    grand = em.grand_at_init(s.run_config(), p.grand_models)          # GraNd of the untrained networks
    m = em.compute(runs, em.el2n_epoch(s.epochs, p.el2n_epoch), grand=grand)
    em.definitions(m)                                                 # name, definition, source of each
    train, test = em.correlations(m.train), em.correlations(m.test)   # Spearman matrices
    em.plot_correlations(train, "training set"); em.notable(train, "training")
    nl = em.never_learned(runs, m)                                    # the four never-learned conventions
    nl.table; em.plot_conventions(nl)
    table = em.retrain(s, m, em.removal_fractions(s, p.removal_fractions), seeds=p.prune_seeds)
    em.plot_pruning(table, m); em.accuracy_table(table)
    card = em.scorecard(table, m, nl, s)

Every measure is computed from one record of the same runs: the eval-mode pass at the end of each
epoch (correctness, the probability of the label, the margin, the loss and the EL2N of every training
and test sample), the train-mode correctness of each sample at its presentation (the minibatch record
of Toneva et al.), and, for GraNd, the untrained networks of the runs' seeds. Each per-run measure is
averaged over the runs, as the paper does.

This chapter is context chosen by the book: the paper under reproduction prunes by density, CBTL and
forgetting (§4.1, Fig. 12, the pruning chapter); EL2N and GraNd are Paul et al.'s (2021), AUM Pleiss et
al.'s (2020), confidence and variability Swayamdipta et al.'s (2020).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from .. import density, measures, models, plots, scores, stats
from .. import pruning as prune
from ..claims import above
from ..report import Scorecard

RADIUS = prune.PAPER_RADIUS  # the density of the paper's pruning, in both planes
EL2N_SHARE = 0.1  # Paul et al. score EL2N early: epoch 20 of 200
PAUL_FRACTION = 0.5  # "we can prune half of the CIFAR10 training set while slightly improving test accuracy"


@dataclass(frozen=True)
class Measure:
    """One per-sample measure: its label on figures, definition, source and which end is easy."""

    label: str
    definition: str
    source: str
    easy: int  # +1: easy samples score high; -1: low; 0: neither end


TRAIN = {
    "cbtl": Measure("CBTL", "epochs at which the eval pass classifies the sample correctly",
                    "Jiang et al. 2021; Zhang et al. 2022", +1),
    "events": Measure("forgetting (eval)", "epochs t with acc^{t-1} = 1 and acc^t = 0 in the eval record; "
                      "a never-learned sample has 0", "Toneva et al. 2019, counted as Zhang et al. 2022 do", -1),
    "toneva": Measure("forgetting (minibatch)", "the same count on the train-mode correctness at each presentation; "
                      "a never-learned sample gets T, the number of its presentations", "Toneva et al. 2019", -1),
    "first_learned": Measure("first learned", "first epoch at which the sample is correct (T + 1 if never)",
                             "this book", -1),
    "confidence": Measure("confidence", "mean over epochs of the probability of the label (learnability)",
                          "Swayamdipta et al. 2020; Lee et al. 2019", +1),
    "variability": Measure("variability", "standard deviation of that probability over epochs",
                           "Swayamdipta et al. 2020", 0),
    "aum": Measure("AUM", "mean over epochs of the margin: logit of the label minus the largest other logit",
                   "Pleiss et al. 2020", +1),
    "el2n": Measure("EL2N", "|| softmax - onehot(label) ||_2 at one early epoch", "Paul et al. 2021", -1),
    "grand": Measure("GraNd (init)", "|| gradient of the loss with respect to the weights ||_2 at the untrained "
                     "weights, mean over the runs' initializations", "Paul et al. 2021", -1),
    "loss": Measure("loss (last epoch)", "cross-entropy at the end of the last epoch", "the training objective", -1),
    "density": Measure("density", f"samples within r = {RADIUS:g} in the (CBTL, forgetting) plane, divided by "
                       "pi r^2", "Zhang et al. 2022", +1),
}
TEST = {
    "cbgl": Measure("CBGL", "epochs at which the eval pass classifies the test sample correctly",
                    "Zhang et al. 2022", +1),
    "events": Measure("mal-generalizing", "epochs t with acc^{t-1} = 1 and acc^t = 0 on a test sample",
                      "Zhang et al. 2022", -1),
    "first_learned": Measure("first correct", "first epoch at which the test sample is correct (T + 1 if never)",
                             "this book", -1),
    "confidence": TRAIN["confidence"],
    "variability": TRAIN["variability"],
    "aum": TRAIN["aum"],
    "el2n": TRAIN["el2n"],
    "loss": TRAIN["loss"],
    "density": Measure("density", f"test samples within r = {RADIUS:g} in the (CBGL, mal-generalizing) plane, "
                       "divided by pi r^2", "Zhang et al. 2022", +1),
}
STRATEGIES = ("random", "forgetting", "el2n", "aum", "cbtl", "density")
COLORS = {"random": "0.35", "forgetting": plots.OKABE_ITO[2], "el2n": plots.OKABE_ITO[5], "aum": plots.OKABE_ITO[6],
          "cbtl": plots.OKABE_ITO[0], "density": plots.OKABE_ITO[4]}  # the pruning chapter's where it has them
STRATEGY_LABELS = {"random": "random", "forgetting": "forgetting\n(minibatch)", "el2n": "EL2N", "aum": "AUM",
                   "cbtl": "CBTL", "density": f"density\n(r = {RADIUS:g})"}
REMOVED_FIRST = {"random": "a seeded random choice", "forgetting": "the fewest events first",
                 "el2n": "the lowest first", "aum": "the highest first", "cbtl": "the highest first",
                 "density": "the densest first"}
COLUMNS = ["strategy", "fraction", "seed", "kept", "test_acc", "train_seconds"]
RECORDS = {"eval": "train_correct", "minibatch": "batch_correct"}


@dataclass(frozen=True)
class Measures:
    """Every measure of the training and the test samples, averaged over the runs.

    train, test : DataFrame
        One row per sample, one column per measure: the keys of :data:`TRAIN` (``grand`` only when
        given) and of :data:`TEST`.
    y_train : ndarray of int, shape (N,)
    full_acc : ndarray, shape (runs,)
        Final test accuracy of each run (trained on the full training set).
    runs, epochs, el2n_epoch : int
    radius : float
        Of the density in both planes.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    y_train: np.ndarray
    full_acc: np.ndarray
    runs: int
    epochs: int
    el2n_epoch: int
    radius: float = RADIUS

    def labels(self, split: str) -> list[str]:
        """The figure labels of the columns of ``split`` ("train" or "test")."""
        frame, known = (self.train, TRAIN) if split == "train" else (self.test, TEST)
        return [known[c].label + (f" (epoch {self.el2n_epoch})" if c == "el2n" else "") for c in frame.columns]


def el2n_epoch(epochs: int, given: int | None = None) -> int:
    """The epoch (1-based) EL2N is read at: ``given``, or 10 % of ``epochs`` rounded, at least 1 (Paul et al.: 20 of 200)."""
    epoch = max(1, round(EL2N_SHARE * epochs)) if given is None else given
    if not (isinstance(epoch, (int, np.integer)) and 1 <= epoch <= epochs):
        raise ValueError(f"el2n_epoch={given!r} must be an epoch in 1..{epochs}")
    return int(epoch)


def removal_fractions(s, given=None) -> tuple[float, ...]:
    """The fractions removed: ``given``, or the profile's ``prune_fractions`` above 0."""
    fractions = tuple(float(f) for f in (given if given is not None else s.prune_fractions) if f > 0)
    if not fractions or any(not 0 < f < 1 for f in fractions):
        raise ValueError(f"removal fractions {given if given is not None else s.prune_fractions!r} must hold at "
                         "least one fraction in (0, 1)")
    return fractions


def _stacked(values) -> np.ndarray:
    values = np.asarray(values)
    return values[None] if values.ndim == 2 else values


def grand_at_init(config, n_models: int, data=None, batch_size: int = 256) -> np.ndarray:
    """GraNd of every training sample at the untrained weights of the runs' first ``n_models`` seeds, float64 (N,).

    Each network is built as a run builds it (``torch.manual_seed(seed)``, then the architecture), for the
    seeds ``config.seed``, ``config.seed + 1``, ...; ``data``: the runs' data (None: loaded for ``config``).
    """
    from ..loop import load_for

    if not (isinstance(n_models, (int, np.integer)) and n_models >= 1):
        raise ValueError(f"n_models={n_models!r} must be a positive integer")
    data = data if data is not None else load_for(config.data, config.arch)
    state = torch.get_rng_state()
    try:
        nets = []
        for k in range(n_models):
            torch.manual_seed(config.seed + k)
            nets.append(models.build(config.arch, data.in_channels, data.num_classes))
    finally:
        torch.set_rng_state(state)
    return scores.grand(nets, data.x_train, data.y_train, batch_size=batch_size)


def compute(runs, el2n_epoch: int, grand=None, radius: float = RADIUS) -> Measures:
    """Every measure of :data:`TRAIN` and :data:`TEST` from ``runs``, a (stacked) trace that recorded scores.

    el2n_epoch : the 1-based epoch EL2N is read at. grand : GraNd of the training samples, shape (N,), or None.
    Each measure is computed per run and averaged over the runs; the density is that of the averaged plane.
    """
    if getattr(runs, "train_margin", None) is None:
        raise ValueError("the runs recorded no margins, losses or EL2N: train them with RunConfig(record_scores=True)")
    frames = {}
    for split in ("train", "test"):
        correct = measures.as_correct_record(_stacked(getattr(runs, f"{split}_correct")))
        epochs = correct.shape[-2]
        if not 1 <= el2n_epoch <= epochs:
            raise ValueError(f"el2n_epoch={el2n_epoch} is not an epoch of the runs (1..{epochs})")
        prob = _stacked(getattr(runs, f"{split}_prob"))
        cartography = scores.data_map(prob, correct)
        counts = measures.cbtl(correct).mean(0)
        events = measures.forgetting_events(correct).mean(0)
        columns = {"cbtl" if split == "train" else "cbgl": counts, "events": events}
        if split == "train":
            columns["toneva"] = scores.forgetting(_stacked(runs.batch_correct), never_learned="presentations").mean(0)
        columns.update({
            "first_learned": scores.first_learned(correct).first_correct.mean(0),
            "confidence": cartography.confidence.mean(0), "variability": cartography.variability.mean(0),
            "aum": scores.aum(_stacked(getattr(runs, f"{split}_margin"))).reshape(-1, correct.shape[-1]).mean(0),
            "el2n": _stacked(getattr(runs, f"{split}_el2n"))[:, el2n_epoch - 1].astype(np.float64).mean(0),
        })
        if split == "train" and grand is not None:
            grand = np.asarray(grand, dtype=np.float64)
            if grand.shape != counts.shape:
                raise ValueError(f"grand must hold one value per training sample {counts.shape}, got {grand.shape}")
            columns["grand"] = grand
        columns["loss"] = _stacked(getattr(runs, f"{split}_loss"))[:, -1].astype(np.float64).mean(0)
        columns["density"] = density.density(counts, events, radius)
        frames[split] = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in columns.items()})
    acc = np.asarray(runs.history["test_acc"], dtype=np.float64)
    acc = acc.reshape(-1, acc.shape[-1])  # (runs, epochs)
    return Measures(frames["train"], frames["test"], np.asarray(runs.y_train), acc[:, -1], runs=len(acc),
                    epochs=int(np.asarray(runs.train_correct).shape[-2]), el2n_epoch=el2n_epoch, radius=radius)


def describe(m: Measures) -> str:
    """The samples, the runs the measures are averaged over and the full set's accuracy."""
    grand = ("GraNd at the untrained weights" if "grand" in m.train else "no GraNd")
    return (f"{len(m.train)} training and {len(m.test)} test samples; measures averaged over {m.runs} runs of "
            f"{m.epochs} epochs; EL2N at epoch {m.el2n_epoch}; {grand}\n"
            f"full-set test accuracy: {m.full_acc.mean():.4f} ± {_sd(m.full_acc):.4f} (mean ± sd over runs)")


def definitions(m: Measures) -> pd.DataFrame:
    """One row per measure of the training set, then the test set's own: label, definition, source, easy end."""
    rows = []
    for split, known, frame in (("training", TRAIN, m.train), ("test", TEST, m.test)):
        for key in frame.columns:
            if split == "test" and known[key] is TRAIN.get(key):
                continue  # defined above for training samples, the same on test samples
            measure = known[key]
            definition = measure.definition.replace("one early epoch", f"epoch {m.el2n_epoch} of {m.epochs}")
            rows.append({"set": split, "measure": measure.label, "definition": definition, "source": measure.source,
                         "easy samples score": {1: "high", -1: "low", 0: "neither end"}[measure.easy]})
    return pd.DataFrame(rows)


# --- agreement -----------------------------------------------------------------------------------


def spearman(a, b) -> float:
    """Spearman's rho of two score vectors (ties at their average rank, inf allowed; nan when one is constant)."""
    return float(stats.correlation_matrix(np.vstack([a, b]), method="spearman")[0, 1])


def correlations(frame: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho between every pair of columns of ``frame`` (nan beside a constant column)."""
    matrix = stats.correlation_matrix(frame.to_numpy(dtype=np.float64).T, method="spearman")
    return pd.DataFrame(matrix, index=frame.columns, columns=frame.columns)


def oriented(corr: pd.DataFrame, split: str = "train") -> pd.DataFrame:
    """``corr`` with every measure turned so that easy samples score high; nan for a measure with no easy end.

    A positive entry: the two measures agree on which samples are easy.
    """
    known = TRAIN if split == "train" else TEST
    sign = np.array([known[c].easy for c in corr.columns], dtype=np.float64)
    sign[sign == 0] = np.nan
    return corr * np.outer(sign, sign)


def _pairs(matrix: pd.DataFrame) -> pd.Series:
    """The entries above the diagonal, indexed by (row, column), nan left out."""
    upper = np.triu(np.ones(matrix.shape, dtype=bool), 1)
    return matrix.where(upper).stack().dropna()


def notable(corr: pd.DataFrame, split: str, m: Measures) -> str:
    """Markdown sentences on the notable agreements and disagreements of ``corr`` (a :func:`correlations` matrix)."""
    label = dict(zip(corr.columns, m.labels(split)))
    raw, turned = _pairs(corr), _pairs(oriented(corr, split))
    if raw.empty:
        return "No pair of measures varies over these samples: there is no correlation to read."

    def name(pair):
        return f"{label[pair[0]]} and {label[pair[1]]}"

    lines = []
    if not turned.empty:
        best, worst = turned.idxmax(), turned.idxmin()
        lines.append(f"- Most alike, once every measure is turned so that easy samples score high: {name(best)} "
                     f"(ρ = {corr.loc[best]:+.2f} as drawn).")
        if turned[worst] < 0:
            lines.append(f"- Most opposed: {name(worst)} (ρ = {corr.loc[worst]:+.2f} as drawn): what one calls easy "
                         "the other tends to call hard.")
        else:
            lines.append(f"- No two measures with an easy end disagree in sign; the weakest agreement: {name(worst)} "
                         f"(ρ = {corr.loc[worst]:+.2f} as drawn).")
    free = raw.abs().idxmin()
    lines.append(f"- Closest to independent: {name(free)} (ρ = {corr.loc[free]:+.2f}).")
    pairs = ([("events", "toneva", "the same count on two records, under two conventions"),
              ("el2n", "grand", "Paul et al.'s two scores, one early in training, one before it"),
              ("aum", "confidence", "a margin and a probability, both averaged over the epochs"),
              ("cbtl", "density", "the plane's first axis and the density in it")] if split == "train" else
             [("cbgl", "aum", "the hits and the margins of the test samples"),
              ("cbgl", "density", "the plane's first axis and the density in it"),
              ("el2n", "loss", "an early error and the last loss")])
    for a, b, why in pairs:
        if a in corr.columns and b in corr.columns and np.isfinite(corr.loc[a, b]):
            lines.append(f"- {label[a]} and {label[b]} ({why}): ρ = {corr.loc[a, b]:+.2f}.")
    constant = [label[c] for c in corr.columns if corr[c].isna().all()]
    if constant:
        lines.append(f"- Constant over these samples, hence without a correlation: {', '.join(constant)}.")
    return "\n".join(lines)


def plot_correlations(corr: pd.DataFrame, title: str, labels=None) -> plt.Figure:
    """Heatmap of one Spearman matrix, every value written in its cell, the labels unclipped."""
    plots.use_style()
    k = len(corr)
    side = min(plots.PAGE_WIDTH_IN, 1.6 + 0.6 * k)  # an annotated cell per pair: as wide as the column allows
    fig, ax = plt.subplots(figsize=(side, 1.2 + 0.55 * k), layout="constrained")
    image = plots.correlation_heatmap(ax, corr.to_numpy(), list(labels or corr.columns), vmin=-1, vmax=1,
                                      cmap="PuOr_r")
    for text in ax.texts:  # a constant measure has no correlation: say so where its cells stay blank
        if text.get_text() == "nan":
            text.set_text("n/a")
            text.set_color("0.45")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman's ρ")
    ax.set_title(title)
    return fig


# --- never-learned samples ----------------------------------------------------------------------


@dataclass(frozen=True)
class NeverLearned:
    """Never-learned training samples on both records, and what each convention does to forgetting.

    per_run : DataFrame
        Index: run (1-based); columns: the records; samples never correct in that run.
    any_run, every_run : dict[str, int]
        Per record: samples never correct in at least one run / in every run.
    table : DataFrame
        One row per record and convention: the value given, the mean rank of the samples never learned
        in some run (1 = most forgotten, ties at their average rank; nan when there are none), that rank
        over the number of samples, and Spearman's rho of the run-averaged count with CBTL and with EL2N.
    samples : int
    """

    per_run: pd.DataFrame
    any_run: dict
    every_run: dict
    table: pd.DataFrame
    samples: int


def never_learned(runs, m: Measures) -> NeverLearned:
    """The never-learned samples of the eval and the minibatch records of ``runs``, under every convention."""
    rows, per_run, any_run, every_run = [], {}, {}, {}
    for record, attr in RECORDS.items():
        correct = measures.as_correct_record(_stacked(getattr(runs, attr)))
        never = ~correct.any(axis=-2)  # (R, N)
        per_run[record], any_run[record], every_run[record] = never.sum(1), int(never.any(0).sum()), \
            int(never.all(0).sum())
        affected = never.any(0)
        n_epochs, n = correct.shape[-2], correct.shape[-1]
        for convention in scores.NEVER_LEARNED:
            f = scores.forgetting(correct, never_learned=convention).astype(np.float64).mean(0)
            rank = rankdata(-f, method="average")  # 1: the most forgotten
            mean_rank = float(rank[affected].mean()) if affected.any() else np.nan
            rows.append({"record": record, "convention": convention,
                         "never learned counts": {"zero": "0", "inf": "inf"}.get(convention, f"T = {n_epochs}"),
                         "mean rank": mean_rank, "rank / N": mean_rank / n,
                         "ρ with CBTL": spearman(f, m.train["cbtl"]), "ρ with EL2N": spearman(f, m.train["el2n"])})
    frame = pd.DataFrame(per_run)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="run")
    return NeverLearned(frame, any_run, every_run, pd.DataFrame(rows), samples=len(m.train))


def describe_never(nl: NeverLearned) -> str:
    """The counts of never-learned training samples, per run and over the runs, on both records."""
    lines = []
    for record in RECORDS:
        lines.append(f"{record} record: never learned per run {nl.per_run[record].tolist()}; in at least one run "
                     f"{nl.any_run[record]}, in every run {nl.every_run[record]} (of {nl.samples})")
    return "\n".join(lines)


def plot_conventions(nl: NeverLearned) -> plt.Figure:
    """Per convention and record: where the never-learned samples rank, and forgetting's ρ with CBTL and EL2N."""
    plots.use_style()
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 1), layout="constrained")
    axes = plots.panel_grid(fig, 3, ncols=2, panel_height=3.4)
    conventions = list(scores.NEVER_LEARNED)
    x = np.arange(len(conventions))
    panels = (("rank / N", "mean rank of never-learned samples / N\n(small: ranked most forgotten)"),
              ("ρ with CBTL", "Spearman's ρ of forgetting with CBTL"),
              ("ρ with EL2N", "Spearman's ρ of forgetting with EL2N"))
    for ax, (column, title) in zip(axes, panels):
        for k, record in enumerate(RECORDS):
            values = nl.table[nl.table["record"] == record].set_index("convention").loc[conventions, column]
            ax.bar(x + (k - 0.5) * 0.38, values.to_numpy(dtype=float), width=0.38, label=f"{record} record",
                   color=plots.OKABE_ITO[4 if k == 0 else 0])
        ax.set_xticks(x, conventions)
        ax.set_xlabel("never-learned convention")
        ax.set_title(title)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_ylim(0 if column == "rank / N" else -1, 1)
        for k, record in enumerate(RECORDS):  # an undefined value (no such sample, a constant count): say so
            values = nl.table[nl.table["record"] == record].set_index("convention").loc[conventions, column]
            for i, v in enumerate(values.to_numpy(dtype=float)):
                if np.isnan(v):
                    ax.text(i + (k - 0.5) * 0.38, 0.02, "n/a", ha="center", va="bottom", fontsize=plots.SMALL_PT,
                            rotation=90, color="0.4")
    if not any(nl.any_run.values()):
        axes[0].text(0.5, 0.5, "no training sample is\nnever learned in any run", transform=axes[0].transAxes,
                     ha="center", va="center")
    axes[0].set_ylim(0, 1)
    axes[0].legend()
    return fig


def _rho(value) -> str:
    return "undefined (a constant count)" if np.isnan(value) else f"{value:+.3f}"


def conventions_summary(nl: NeverLearned) -> str:
    """Markdown: what the conventions change, read from the table."""
    t = nl.table.set_index(["record", "convention"])
    lines = []
    for record in RECORDS:
        if not nl.any_run[record]:
            lines.append(f"- {record} record: no training sample is never learned in any run, so the four "
                         "conventions give the same counts and the same correlations.")
            continue
        zero, top = t.loc[(record, "zero")], t.loc[(record, "presentations")]
        lines.append(f"- {record} record: the {nl.any_run[record]} samples never learned in some run stand on average "
                     f"{zero['rank / N']:.0%} of the way down the ranking from the most forgotten under zero, and "
                     f"{top['rank / N']:.0%} under T; forgetting's ρ with CBTL goes from {_rho(zero['ρ with CBTL'])} to "
                     f"{_rho(top['ρ with CBTL'])}, with EL2N from {_rho(zero['ρ with EL2N'])} to "
                     f"{_rho(top['ρ with EL2N'])}.")
    same = all(np.allclose(t.loc[(r, "max")].iloc[1:].astype(float), t.loc[(r, "inf")].iloc[1:].astype(float),
                           equal_nan=True) for r in RECORDS)
    lines.append("- max, presentations and inf order the samples " + ("alike: any value above every reachable count "
                 "ranks the same, so only the rank-free uses of the count (means, plots) tell them apart."
                 if same else "differently here: a sample never learned in one run only averages to a finite value "
                 "under T but to inf under inf."))
    return "\n".join(lines)


# --- pruning ------------------------------------------------------------------------------------


def kept(m: Measures, strategy: str, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted positions of the training samples ``strategy`` keeps after removing ``fraction`` from each class."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    t = m.train
    return prune.kept_indices(strategy, fraction, cbtl=t["cbtl"].to_numpy(), events=t["events"].to_numpy(),
                              radius=m.radius, forgetting=t["toneva"].to_numpy(), labels=m.y_train, seed=seed,
                              score=t[strategy].to_numpy() if strategy in prune.SCORE_STRATEGIES else None)


def pruned_config(s, m: Measures, strategy: str, fraction: float, k: int):
    """The RunConfig of seed ``k`` (0-based) of ``strategy`` at ``fraction``: selection and training seed s.seed + k."""
    t = m.train
    seed = s.seed + k
    return prune.pruned_config(s.run_config(seed=seed), strategy, fraction, cbtl=t["cbtl"].to_numpy(),
                               events=t["events"].to_numpy(), radius=m.radius, forgetting=t["toneva"].to_numpy(),
                               labels=m.y_train, seed=seed,
                               score=t[strategy].to_numpy() if strategy in prune.SCORE_STRATEGIES else None)


def retrain(s, m: Measures, fractions, seeds: int = 2, runner=None) -> pd.DataFrame:
    """Train one run per strategy, fraction and seed on the samples kept; one row each (:data:`COLUMNS`).

    Seed k selects (random draw, ties) and trains with ``s.seed + k``, so the spread over seeds holds both.
    ``runner(config, runs)`` -> stacked Trace replaces the cached training (tests); None trains on ``s.device``.
    """
    if runner is None:
        from ..train import get_runs

        def runner(config, n):
            return get_runs(config, n, device=s.device)

    rows = []
    for fraction in fractions:
        for strategy in STRATEGIES:
            for k in range(seeds):
                trace = runner(pruned_config(s, m, strategy, fraction, k), 1)
                acc = np.asarray(trace.history["test_acc"], dtype=np.float64).reshape(-1)
                rows.append({"strategy": strategy, "fraction": float(fraction), "seed": s.seed + k,
                             "kept": len(trace.y_train), "test_acc": float(acc[-1]),
                             "train_seconds": float(sum(r["train_seconds"] for r in trace.run_metas()))})
    return pd.DataFrame(rows, columns=COLUMNS)


def _sd(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1)) if values.size > 1 else np.nan


def accuracy_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per fraction and strategy: samples kept, mean and sd (ddof = 1) of the final test accuracy over seeds,
    the difference of the mean from random's, and the training seconds per run."""
    rows = []
    for (fraction, strategy), g in table.groupby(["fraction", "strategy"], sort=False):
        random = table[(table["fraction"] == fraction) & (table["strategy"] == "random")]["test_acc"]
        rows.append({"fraction removed": fraction, "strategy": strategy, "kept": int(g["kept"].mean()),
                     "seeds": len(g), "test accuracy": g["test_acc"].mean(), "sd": _sd(g["test_acc"]),
                     "minus random": g["test_acc"].mean() - random.mean() if len(random) else np.nan,
                     "seconds per run": g["train_seconds"].mean()})
    return pd.DataFrame(rows)


def difference(table: pd.DataFrame, a: str, b: str, fraction: float) -> float:
    """Mean final test accuracy of strategy ``a`` minus that of ``b`` at ``fraction``, each over its seeds."""
    at = table[np.isclose(table["fraction"], fraction)]
    acc = {s: at.loc[at["strategy"] == s, "test_acc"] for s in (a, b)}
    empty = [s for s, v in acc.items() if v.empty]
    if empty:
        raise ValueError(f"table has no run of {', '.join(empty)} at fraction {fraction:g}")
    return float(acc[a].mean() - acc[b].mean())


def plot_pruning(table: pd.DataFrame, m: Measures) -> plt.Figure:
    """Final test accuracy per strategy, one panel per fraction: every seed, mean ± sd, random's band, the full set."""
    plots.use_style()
    fractions = sorted(table["fraction"].unique())
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 1), layout="constrained")
    axes = plots.panel_grid(fig, len(fractions), ncols=1, panel_height=4.2, sharey=True)[None, :]
    full, full_sd = m.full_acc.mean(), _sd(m.full_acc)
    x = np.arange(len(STRATEGIES))
    for ax, fraction in zip(axes[0], fractions):
        at = table[table["fraction"] == fraction]
        rand = at.loc[at["strategy"] == "random", "test_acc"]
        ax.axhspan(rand.mean() - np.nan_to_num(_sd(rand)), rand.mean() + np.nan_to_num(_sd(rand)), color="0.88",
                   zorder=0)
        ax.axhline(rand.mean(), color="0.35", ls="--", lw=1.2, label="random removal: mean, band ± sd")
        ax.axhline(full, color="black", lw=1.2, label=f"full training set: mean of {m.runs} runs")
        if np.isfinite(full_sd):
            ax.axhline(full - full_sd, color="black", lw=0.6, ls=":")
            ax.axhline(full + full_sd, color="black", lw=0.6, ls=":", label="full training set ± sd")
        for i, strategy in enumerate(STRATEGIES):
            acc = at.loc[at["strategy"] == strategy, "test_acc"].to_numpy()
            if not acc.size:
                continue
            color = COLORS[strategy]
            jitter = np.linspace(-0.12, 0.12, acc.size) if acc.size > 1 else np.zeros(1)
            ax.scatter(i + jitter, acc, s=22, color=color, alpha=0.7, zorder=3,
                       label="one seed" if i == 0 else None)
            ax.errorbar(i + 0.25, acc.mean(), yerr=np.nan_to_num(_sd(acc)), fmt="o", color=color, capsize=4,
                        ms=6, zorder=4, label="mean ± sd over seeds" if i == 0 else None)
        ax.set_xticks(x, [STRATEGY_LABELS[s] for s in STRATEGIES])
        ax.set_xlim(-0.6, len(STRATEGIES) - 0.3)
        ax.set_title(f"{fraction:.0%} of each class removed, {at['seed'].nunique()} seeds per strategy")
        ax.set_xlabel("strategy (each but random removes the easiest samples by its score first)")
    axes[0, 0].set_ylabel("final test accuracy")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


def pruning_summary(table: pd.DataFrame, m: Measures) -> str:
    """Markdown, per fraction: the strategies above random's band, the best, and the full set's accuracy."""
    lines = []
    for fraction in sorted(table["fraction"].unique()):
        at = table[table["fraction"] == fraction]
        means = at.groupby("strategy", sort=False)["test_acc"].mean()
        rand, rand_sd = means["random"], _sd(at.loc[at["strategy"] == "random", "test_acc"])
        others = means.drop("random")
        clear = [s for s, v in others.items() if np.isfinite(rand_sd) and v > rand + rand_sd]
        below = [s for s, v in others.items() if v < rand]
        best = others.idxmax()
        lines.append(
            f"- {fraction:.0%} removed: random removal keeps {rand:.4f} (sd {rand_sd:.4f} over seeds); the best score "
            f"is {best} ({others[best]:.4f}, {others[best] - rand:+.4f} against random); above random's band: "
            f"{', '.join(clear) or 'none'}; below random's mean: {', '.join(below) or 'none'}. The full training set "
            f"reaches {m.full_acc.mean():.4f}.")
    return "\n".join(lines)


# --- scorecard ------------------------------------------------------------------------------------


def scorecard(table: pd.DataFrame, m: Measures, nl: NeverLearned, s, train_corr: pd.DataFrame | None = None
              ) -> Scorecard:
    """The sources' pruning claims as tests at every fraction removed; the rest as context rows.

    Toneva et al. (2019): removing the least forgotten samples beats removing at random. Paul et al.
    (2021): EL2N early in training prunes "half of the CIFAR10 training set while slightly improving test
    accuracy", so it beats random up to half removed (beyond, not comparable). Each claim is the sign of the
    mean test-accuracy difference to random removal over the seeds. The density, CBTL and AUM strategies'
    differences and density against EL2N and AUM are context: the paper's own claims on density, CBTL and
    random removal are scored in the pruning chapter.
    """
    card = Scorecard("every_measure", setting=s.describe())
    seeds = int(table.groupby(["fraction", "strategy"]).size().min()) if len(table) else 0
    setting = f"{s.describe()}; measures from {m.runs} runs, {seeds} seed(s) per strategy and fraction"
    card.add(f"test accuracy, full training set (mean of {m.runs} runs)", paper="n/a", value=float(m.full_acc.mean()))
    card.add("training samples never learned in some run, eval record", paper="n/a", value=nl.any_run["eval"])
    card.add("training samples never learned in some run, minibatch record", paper="n/a", value=nl.any_run["minibatch"])
    if train_corr is not None:
        for a, b in (("el2n", "grand"), ("cbtl", "aum"), ("events", "toneva")):
            if a in train_corr and b in train_corr:
                card.add(f"Spearman of {TRAIN[a].label} and {TRAIN[b].label}, training set", paper="n/a",
                         value=float(train_corr.loc[a, b]))
    for fraction in sorted(table["fraction"].unique()):
        pct = f"{fraction:.0%}"
        rand = table.loc[(table["fraction"] == fraction) & (table["strategy"] == "random"), "test_acc"]
        card.add(f"test accuracy, random removal of {pct} (mean over seeds)", paper="n/a", value=float(rand.mean()),
                 setting=setting)
        card.add(f"forgetting (minibatch record, never learned = T) minus random at {pct} removed: mean test accuracy",
                 paper="> 0 (Toneva et al. 2019)", value=difference(table, "forgetting", "random", fraction),
                 test=above(0), setting=setting)
        paul = (True if fraction <= PAUL_FRACTION + 1e-9 else
                f"Paul et al. prune up to {PAUL_FRACTION:.0%} of CIFAR-10; this profile removes {pct}")
        card.add(f"EL2N (epoch {m.el2n_epoch}) minus random at {pct} removed: mean test accuracy",
                 paper=f"> 0 up to {PAUL_FRACTION:.0%} removed (Paul et al. 2021)",
                 value=difference(table, "el2n", "random", fraction), test=above(0), comparable=paul, setting=setting)
        for strategy, paper in (("density", "> 0 (§4.1; scored in the pruning chapter)"),
                                ("cbtl", "> 0 (§4.1; scored in the pruning chapter)"), ("aum", "n/a")):
            card.add(f"{TRAIN[strategy].label} minus random at {pct} removed: mean test accuracy", paper=paper,
                     value=difference(table, strategy, "random", fraction), setting=setting)
        for other in ("el2n", "aum"):
            card.add(f"density minus {TRAIN[other].label} at {pct} removed: mean test accuracy", paper="n/a",
                     value=difference(table, "density", other, fraction), setting=setting)
    return card
