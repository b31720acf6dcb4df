"""The six run-averaged sample measures compared across architectures and optimizers (paper §3.3.3).

    from regutils import robustness, stats
    by_arch = {a: robustness.sample_measures(get_runs(s.run_config(arch=a), 3)) for a in s.archs}
    table = stats.pairwise_measure_correlations(by_arch)     # rows: pairs, columns: MEASURES
    robustness.density_correlations(robustness.planes(by_opt, "train"))   # {(a, b): Corr}, Fig. 11's numbers
    robustness.paper_table2_value("CBTL", "resnet20", "resnet110")        # 0.9935 (None: pair not in Table 2)

Each measure is computed per run and averaged over runs; the densities are
those of the run-averaged planes (CBTL, forgetting events) on the training set
and (CBGL, mal-generalizing events) on the test set, at the paper's default
radius unless ``radius`` is given.
"""
from itertools import combinations

import numpy as np

from . import density, measures, stats

MEASURES = ("CBTL", "CBGL", "forgetting", "mal-generalizing", "train density", "test density")
# the bi-dimensional representation of each split: (horizontal, vertical) measures of MEASURES
PLANES = {"train": ("CBTL", "forgetting"), "test": ("CBGL", "mal-generalizing")}

# Table 2: Pearson between architectures, rows in MEASURES' order, columns the pairs of TABLE2_ARCHS
TABLE2_ARCHS = ("resnet20", "resnet32", "resnet110", "densenet_bc_100_12")
TABLE2 = {
    "CBTL": (0.9986, 0.9935, 0.9826, 0.9977, 0.9745, 0.9585),
    "CBGL": (0.9973, 0.9901, 0.9841, 0.9962, 0.9733, 0.9533),
    "forgetting": (0.9996, 0.9978, 0.9953, 0.9992, 0.9950, 0.9925),
    "mal-generalizing": (0.9995, 0.9989, 0.9894, 0.9993, 0.9924, 0.9914),
    "train density": (0.9603, 0.9480, 0.9107, 0.9594, 0.9057, 0.9005),
    "test density": (0.9560, 0.9327, 0.8846, 0.9524, 0.8955, 0.9025),
}
TABLE2_BOUND = 0.88  # "the Pearson correlation coefficients are all above 0.88"
# §3.3.3, Fig. 11: Pearson of the sample distribution representations between optimizers (ResNet-110)
FIG11 = {"train": {("sgd", "adagrad"): 0.8914, ("sgd", "adamax"): 0.6877, ("adagrad", "adamax"): 0.6962},
         "test": {("sgd", "adagrad"): 0.8877, ("sgd", "adamax"): 0.6628, ("adagrad", "adamax"): 0.7062}}


def sample_measures(trace, radius=None) -> dict[str, np.ndarray]:
    """{name: float64 (N,) or (M,)} for every name of MEASURES, from a (stacked) trace (:func:`regutils.measures.table`)."""
    rows = measures.table(trace, radius=radius)
    train, test = rows[rows.split == "train"], rows[rows.split == "test"]
    return {"CBTL": train.cbtl.to_numpy(), "CBGL": test.cbgl.to_numpy(), "forgetting": train.events.to_numpy(),
            "mal-generalizing": test.events.to_numpy(), "train density": train.density.to_numpy(),
            "test density": test.density.to_numpy()}


def _pair_value(table, a, b):
    return table.get((a, b), table.get((b, a)))


def paper_table2_value(measure, a, b) -> float | None:
    """Table 2's correlation of ``measure`` between architectures ``a`` and ``b`` (either order); None if absent."""
    if measure not in TABLE2:
        raise ValueError(f"measure={measure!r} is unknown; allowed: {', '.join(TABLE2)}")
    pairs = list(combinations(TABLE2_ARCHS, 2))
    return _pair_value(dict(zip(pairs, TABLE2[measure])), a, b)


def paper_fig11_value(split, a, b) -> float | None:
    """Fig. 11's correlation between optimizers ``a`` and ``b`` (either order) on ``split``; None if absent."""
    if split not in FIG11:
        raise ValueError(f"split={split!r} is unknown; allowed: {', '.join(FIG11)}")
    return _pair_value(FIG11[split], a, b)


def planes(measures_by_group, split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{group: (x, y)}: each group's bi-dimensional representation of ``split`` ("train" or "test").

    measures_by_group: {group: :func:`sample_measures` output}.
    """
    if split not in PLANES:
        raise ValueError(f"split={split!r} is unknown; allowed: {', '.join(PLANES)}")
    x, y = PLANES[split]
    return {g: (m[x], m[y]) for g, m in measures_by_group.items()}


def density_correlations(planes_by_group, radius=None, n_boot=1000, ci=0.95, seed=0) -> dict[tuple, "stats.Corr"]:
    """Pearson correlation of the normalized density vectors of every pair of groups' planes.

    planes_by_group: {group: (x, y)}, each (N,) with the same N samples in every group (e.g.
    :func:`planes`). Each group's density is taken in its own plane, at its own default radius
    when ``radius`` is None (the sample distribution representation of paper Fig. 2 and 6), then
    divided by its sum. Returns {(a, b): stats.Corr} for every pair, a before b in the dict's
    order, with a bootstrap interval over the samples.
    """
    groups = list(planes_by_group)
    if len(groups) < 2:
        raise ValueError(f"planes_by_group needs at least 2 groups, got {len(groups)}")
    vectors = {g: density.normalized_density(density.density(*planes_by_group[g], radius)) for g in groups}
    sizes = {g: v.size for g, v in vectors.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"every group's plane must hold the same samples, got sizes {sizes}")
    return {(a, b): stats.pearson(vectors[a], vectors[b], n_boot=n_boot, ci=ci, seed=seed)
            for a, b in combinations(groups, 2)}
