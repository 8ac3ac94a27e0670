"""Results: raw tallies to one ``xarray.Dataset``, the manifest and the bands.

:mod:`~simsend.results.dataset` builds the Dataset, :mod:`~simsend.results.manifest` records
the run's provenance that every output carries, and :mod:`~simsend.results.summary` computes
bands as a ``quantile`` dimension from the draws.
"""
