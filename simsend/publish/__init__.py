"""Publishing.

Tidy tables for other tools (:mod:`~simsend.publish.export`) with small-number suppression
(:mod:`~simsend.publish.disclosure`), fan charts (:mod:`~simsend.publish.plot`) and the
self-contained HTML report (:mod:`~simsend.publish.report`).
"""
