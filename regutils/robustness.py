"""The six run-averaged sample measures compared across architectures and optimizers (paper §3.3.3).

    from regutils import robustness, stats
    by_arch = {a: robustness.sample_measures(get_runs(s.run_config(arch=a), 3)) for a in s.archs}
    table = stats.pairwise_measure_correlations(by_arch)     # rows: pairs, columns: MEASURES

Each measure is computed per run and averaged over runs; the densities are
those of the run-averaged planes (CBTL, forgetting events) on the training set
and (CBGL, mal-generalizing events) on the test set, at the paper's default
radius unless ``radius`` is given.
"""
import numpy as np

from . import density, measures

MEASURES = ("CBTL", "CBGL", "forgetting", "mal-generalizing", "train density", "test density")


def sample_measures(trace, radius=None) -> dict[str, np.ndarray]:
    """{name: float64 (N,) or (M,)} for every name of MEASURES, from a (stacked) trace."""
    cbtl = measures.average_over_runs(measures.cbtl(trace.train_correct))
    cbgl = measures.average_over_runs(measures.cbgl(trace.test_correct))
    forgetting = measures.average_over_runs(measures.forgetting_events(trace.train_correct))
    malgeneralizing = measures.average_over_runs(measures.malgeneralizing_events(trace.test_correct))
    return {
        "CBTL": cbtl,
        "CBGL": cbgl,
        "forgetting": forgetting,
        "mal-generalizing": malgeneralizing,
        "train density": density.density(cbtl, forgetting, radius),
        "test density": density.density(cbgl, malgeneralizing, radius),
    }
