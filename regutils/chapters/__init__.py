"""chapters: what each chapter of the book computes, draws and scores, one module per chapter.

A chapter's notebook holds the narrative, its parameters and short calls; the module holds the
computation (results as dataclasses or frames), the figures (functions that return them) and the
scorecard (the paper's claims as tested verdicts). Each module is tested in
``tests/test_chapters_<name>.py``. A notebook reads:

    profile = "default"                     # the parameters cell
    overrides = {}
    s, p = chapter_settings("setup", profile, overrides)
    runs = get_runs(s.run_config(), s.runs, device=s.device)
    records = setup.compare_records(runs, seed=s.seed)

Modules, in the book's order: setup, representation, randomness, memorization, robustness,
pruning, testing (the paper's sections), then primer, arpit, shallow_deep, easy_hard, learnability,
every_measure (the other tools' scores from one trace).
"""
