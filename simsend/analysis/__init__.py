"""Analysis of results.

Scenario differences (:mod:`~simsend.analysis.compare`), recorded figures against the
forecast (:mod:`~simsend.analysis.monitor`), outcome indicators, goal-seeking a modifier,
spend with uncertainty (:mod:`~simsend.analysis.costs`) and which rates drive the results
(:mod:`~simsend.analysis.sensitivity`).
"""
