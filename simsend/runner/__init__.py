"""Running a forecast.

One recipe (:mod:`~simsend.runner.plan`), executed in memory (:mod:`~simsend.runner.forecast`),
on Dask (:mod:`~simsend.runner.distributed`) or streamed to Zarr (:mod:`~simsend.runner.stream`).
(Named ``runner`` so that ``simsend.run``, the function, keeps its name.)
"""
