"""Results: raw tallies to one ``xarray.Dataset`` (:mod:`~simsend.results.dataset`), the run
manifest that every output carries (:mod:`~simsend.results.manifest`), and bands as a
``quantile`` dimension computed from the draws (:mod:`~simsend.results.summary`)."""
