"""The search engine: everything about running a search on data.

``nasc.search.search(space, method=..., data=...)`` runs a paper's recipe end to end (search,
derive, retrain, report); :func:`derive_run` re-derives a run directory's architecture and
:func:`train_architecture` trains a given architecture from scratch. The modules:

- :mod:`nasc.search.run`: a run: its phases in order, its checkpoints; ``nasc derive``;
- :mod:`nasc.search.phases`: the phases (search, trials, evolution, retrain, report);
- :mod:`nasc.search.steps`: one search step; the stop on a non-finite loss or parameter;
- :mod:`nasc.search.retrain`: retraining, evaluation, ``nasc train``;
- :mod:`nasc.search.state`: the run's typed state and its serialisation;
- :mod:`nasc.search.settings`: the run's settings, declared with their checks;
- :mod:`nasc.search.checks`: the spaces and the data checked against each other up front;
- :mod:`nasc.search.recipes`: each method's search-loop settings (the methods themselves:
  :mod:`nasc.methods`);
- :mod:`nasc.search.strategies`: temperatures, second-order DARTS, evolution, BN recalibration;
- :mod:`nasc.search.multitrial`: the multi-trial baselines (``random``, ``evolution``);
- :mod:`nasc.search.training`: losses, metrics, the run-directory writer, RNG state;
- :mod:`nasc.search.data`: the built-in data sets and the user's data as splits;
- :mod:`nasc.search.distributed`: data-parallel runs under ``torchrun``;
- :mod:`nasc.search.hrnas`: HR-NAS' progressive shrinking;
- :mod:`nasc.search.profile`: latency tables (``nasc profile``);
- :mod:`nasc.search.pictures`: a run's pictures.
"""

from nasc.search.run import SearchResult, derive_run, search, train_architecture

__all__ = ["SearchResult", "derive_run", "search", "train_architecture"]
