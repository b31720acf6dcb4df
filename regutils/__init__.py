"""regutils: sample-wise regularity measures, from training runs that record every sample.

    from regutils.data import DataConfig
    from regutils.train import RunConfig, get_runs
    from regutils import measures, density

    runs = get_runs(RunConfig(DataConfig("digits"), arch="small_cnn", epochs=30), runs=3)
    cbtl = measures.cbtl(runs.train_correct).mean(0)            # averaged over runs
    events = measures.forgetting_events(runs.train_correct).mean(0)
    d = density.density(cbtl, events)

Modules, from images to pages:
  engine    data, cifar_subset (the shipped CIFAR-10 subset), models, train, stacked
            (many seeds as one model), trace (records, sealed cache), bundle (shipped
            runs), sweep (runs on a Dask cluster)
  analysis  measures, density, sampling, sync, probe, picks, stats, stability,
            robustness, pruning, algorithms, contingency, easy_hard, features,
            fitting, sensitivity
  book      claims (claims as tested predicates), report (scorecards), profiles,
            plots, book (execute and build), cli (``python -m regutils --help``)
"""
__version__ = "0.1.0"
