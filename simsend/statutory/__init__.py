"""The statutory EHC pipeline around the plans the engine issues.

Requests, assessments, refusals, 20-week timeliness and tribunal appeals
(:mod:`~simsend.statutory.ehc_pipeline`), and the assessing workforce that limits timeliness
(:mod:`~simsend.statutory.workforce`).
"""
