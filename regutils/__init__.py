"""regutils: sample-wise regularity measures, from training runs that record every sample.

    from regutils.data import DataConfig
    from regutils.train import RunConfig, get_runs
    from regutils import measures, density

    runs = get_runs(RunConfig(DataConfig("digits"), arch="small_cnn", epochs=30), runs=3)
    cbtl = measures.cbtl(runs.train_correct).mean(0)            # averaged over runs
    events = measures.forgetting_events(runs.train_correct).mean(0)
    d = density.density(cbtl, events)

Modules: data, models, train, trace (records and cache), measures, density,
sampling, sync, stats, stability (run-to-run stability of a recipe), plots,
profiles, cli (``python -m regutils --help``).
"""
__version__ = "0.1.0"
