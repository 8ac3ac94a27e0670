"""Rates: the one place a year's rate tables are built.

A *source* (:mod:`~simsend.rates.sources`: fixed ``[model]`` rates, or
:mod:`~simsend.rates.posterior`: one calibrated posterior draw per replicate) hands out one
:class:`~simsend.rates.parameters.ParameterSet` per Monte Carlo draw.  Wrappers add a
scenario (:mod:`~simsend.rates.scenario`, with :mod:`~simsend.rates.modifiers` and the reform
timeline of :mod:`~simsend.rates.reform`) and a provision plan
(:mod:`~simsend.rates.provision`).  :meth:`ParameterSet.year_tables
<simsend.rates.parameters.ParameterSet.year_tables>` turns a set into the kernel-ready tables
of one year: trends, then reform, then modifiers.
"""
