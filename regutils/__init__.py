"""regutils: sample-wise regularity measures, from training runs that record every sample.

    from regutils.data import DataConfig
    from regutils.train import RunConfig, get_runs
    from regutils import measures, density

    runs = get_runs(RunConfig(DataConfig("digits"), arch="small_cnn", epochs=30), runs=3)
    cbtl = measures.cbtl(runs.train_correct).mean(0)            # averaged over runs
    events = measures.forgetting_events(runs.train_correct).mean(0)
    d = density.density(cbtl, events)

Modules, from images to pages (``python -m regutils.layout`` checks that imports flow this way):
  engine    data (data sets, the shipped CIFAR-10 subset), cifar_subset (rebuilds it),
            models, loop (run config, optimizer, schedule, minibatches, eval pass),
            train (one run; get_runs), stacked (many seeds as one model), trace (the
            record and its sealed files), checkpoint (resumable state, final weights),
            cache (the trace directory and its locks), bundle (shipped runs),
            sweep (runs on a Dask cluster), validation (declared argument checks),
            recorder (any training loop records a trace; the engine records through it),
            lightning and huggingface (the recorder as a callback of those trainers)
  analysis  measures, density, sampling, sync, probe, picks, stats, stability,
            robustness, pruning, algorithms, contingency, easy_hard, features,
            fitting, sensitivity, scores (the other tools' per-sample scores:
            AUM, EL2N, GraNd, forgetting conventions), exports (files other tools read)
  book      claims (claims as tested predicates), report (scorecards), profiles,
            plots, explorer (the interactive planes, BokehJS inline),
            chapters (each chapter's computation, figures and scorecard),
            book (execute and build), executed (the cache of executed
            chapters), cli (``python -m regutils --help``),
            layout (the architecture checks)
"""
__version__ = "0.1.0"
