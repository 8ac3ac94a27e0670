"""A scenario's run of the rates.

Each draw's parameter set with the scenario's modifiers and reform.

:func:`scenario_source` wraps any parameter source (fixed rates or a posterior) so that every
draw's :class:`simsend.rates.parameters.ParameterSet` carries the run's start year, reform
timeline, compiled modifiers and pipeline rates; the rates themselves are untouched, so a
scenario and its baseline share parameter draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from simsend.config.reform import ReformConfig
from simsend.config.scenarios import Scenario, is_baseline
from simsend.config.workforce import check_areas
from simsend.rates.modifiers import Compiled, compile_modifiers
from simsend.rates.sources import WrappedSource


class ScenarioSource(WrappedSource):
    """Wraps a :class:`simsend.rates.sources.ParameterSource`: every draw's set runs a scenario.

    Each parameter set gets the run's start year, the reform timeline and the scenario's
    compiled modifiers; the rates of the set are untouched, so parameter draws (e.g.
    posterior draws) are shared across scenarios.  (The statutory pipeline's rates and their
    ``pipeline.*`` modifiers act where the pipeline is drawn,
    ``simsend.statutory.ehc_pipeline.statutory_variables``.)

    Parameters
    ----------
    source : ParameterSource
    start_year : int
    reform : ReformConfig
    modifiers : tuple of Compiled

    """

    def __init__(self, source, start_year: int, reform: ReformConfig,
                 modifiers: tuple[Compiled, ...] = ()):
        self.source = source
        self.start_year = start_year
        self.reform = reform
        self.modifiers = modifiers

    def wrap(self, ps):
        """Return ``ps`` running this scenario."""
        return dataclasses.replace(ps, start_year=self.start_year, reform=self.reform,
                                   modifiers=self.modifiers)


def scenario_source(source, cfg, areas: Sequence[str], scenario: Scenario | None = None):
    """Wrap ``source`` so that it runs ``scenario`` (None: the baseline) under ``cfg``."""
    base = is_baseline(scenario)
    reform = cfg.reform if base or scenario.reform is None else scenario.reform
    mods = () if base else compile_modifiers(scenario.modifiers, areas)
    check_areas(cfg.workforce, areas, cfg.source_path)  # before the run, not after it
    return ScenarioSource(source, cfg.run.start_year, reform, mods)
