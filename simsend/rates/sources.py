"""Parameter sources.

What hands the engine one :class:`~simsend.rates.parameters.ParameterSet` per draw.

:class:`FixedParameters` gives the config's ``[model]`` rates to every draw; a calibrated
posterior (:class:`simsend.rates.posterior.PosteriorParameters`) gives one posterior draw per
replicate.  Wrappers derive each draw's set from an inner source's: a scenario
(:mod:`simsend.rates.scenario`), a provision plan (:mod:`simsend.rates.provision`), a chunk of
areas (:mod:`simsend.runner.distributed`).  :func:`innermost` finds the source under them all.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Protocol

import numpy as np

from simsend.config.model import ModelConfig
from simsend.rates.parameters import ParameterSet, expand_tiers, placement_matrix


class ParameterSource(Protocol):
    """Anything that hands out one :class:`ParameterSet` per Monte Carlo draw."""

    def get(self, draw: int) -> ParameterSet:
        """Return the parameter set feeding Monte Carlo draw ``draw``."""


class LastMemo:
    """Remembers the last value built and the key it was built for (not pickled)."""

    def _recall(self, key, make, same=operator.is_):
        """Return ``make(key)``, or the last value when ``same(last key, key)``."""
        last = self.__dict__.get("_last")
        if last is not None and same(last[0], key):
            return last[1]
        value = make(key)
        self._last = (key, value)
        return value

    def __getstate__(self):
        """Pickle without the memo (sources travel to Dask workers)."""
        state = self.__dict__.copy()
        state.pop("_last", None)
        return state


class WrappedSource(LastMemo):
    """Base of sources that derive each draw's set from an inner source's set.

    While the inner source hands out the same object (fixed rates give one set for every draw)
    the derived set is handed out again, so its year tables are built once per run, not once
    per draw.  Subclasses set ``self.source`` and define :meth:`wrap`.
    """

    source: ParameterSource

    def wrap(self, ps: ParameterSet) -> ParameterSet:  # pragma: no cover - abstract
        """Derive this source's set from the inner source's set ``ps``."""
        raise NotImplementedError

    def get(self, draw: int) -> ParameterSet:
        """Return draw ``draw``'s set: :meth:`wrap` of the inner source's set."""
        return self._recall(self.source.get(draw), self.wrap)


class FixedParameters:
    """The same parameter set for every draw (rates fixed in the config).

    Parameters
    ----------
    model : ModelConfig
        Parsed ``[model]`` table.
    births : ndarray (n_areas,)
        Age-0 entrants per area in the baseline year.

    """

    def __init__(self, model: ModelConfig, births: np.ndarray):
        n_areas = len(births)
        self.params = ParameterSet(
            identification=np.repeat(model.identification[:, None], n_areas, axis=1),
            leaving=model.leaving.copy(),
            tiers=expand_tiers(model, n_areas),
            need_mix=model.need_mix.copy(),
            placement_new=model.placement_new.copy(),
            placement=placement_matrix(model),
            births=np.asarray(births, dtype=np.int64),
            births_growth=model.births_growth,
        )

    def get(self, draw: int) -> ParameterSet:
        """Return the fixed set, whatever the draw."""
        return self.params


def innermost(source):
    """Return the source under every wrapper (the posterior or fixed rates a run started from)."""
    while isinstance(source, WrappedSource):
        source = source.source
    return source


class SplitSource(WrappedSource):
    """Each draw's set with the targeted / targeted-plus split held at ``share``.

    See :mod:`simsend.rates.split` (``[model] targeted_split = "balanced"``).

    Parameters
    ----------
    source : ParameterSource
        The inner source (fixed rates, a posterior, calibrated placements).
    share : float
        Targeted-plus share of SEN support (``[data] targeted_plus_share``).

    """

    def __init__(self, source: ParameterSource, share: float):
        if not 0.0 <= float(share) < 1.0:
            raise ValueError(f"targeted_plus_share {share} must be in [0, 1) to balance the "
                             f"split")
        self.source = source
        self.share = float(share)

    def wrap(self, ps: ParameterSet) -> ParameterSet:
        """Return ``ps`` with :attr:`ParameterSet.targeted_plus_share` set."""
        return dataclasses.replace(ps, targeted_plus_share=self.share)
