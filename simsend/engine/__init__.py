"""The engine: draws x years x the ordered steps of :data:`simsend.engine.loop.STEPS`.

:mod:`~simsend.engine.loop` (start reading here: the step order and :func:`run_year
<simsend.engine.loop.run_year>`), :mod:`~simsend.engine.population` (pupils as a struct of
arrays grouped by cell), :mod:`~simsend.engine.tally` (the marginals counted and the names of
flow rows), :mod:`~simsend.engine.streams` (the counter-based random streams of each draw),
:mod:`~simsend.engine.threads` (draws shared out over threads).  The per-pupil work is in
:mod:`simsend.kernels`.
"""
