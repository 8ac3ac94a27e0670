"""Places: the provision plan, and who gets a place when a placement is full.

A provision plan gives the places of some placements per area and census year (a tidy CSV:
``area,placement,year,places``; ``places`` may be ``unlimited``).  Places of a year apply to
the year that ends at that census, and a row holds until the next row of its area and
placement (a step function), so a plan lists the baseline places and each planned expansion.
Placements and areas without rows have unlimited places, and a run without ``[provision]``
allocates nothing: unlimited places reproduce the unconstrained run bit for bit.

The allocation rule, each simulated year, after the year's moves
(:mod:`simsend.kernels.allocate` does it):

1. Pupils who stay in their placement keep their place (no child is moved out to make room),
   so occupancy can exceed places only where the plan cuts places below the pupils already
   there.  A pupil moving to a placement with unlimited places frees its place at once; one
   whose request for a limited placement is queued keeps its old place this year (it goes
   back there if every option refuses it), and a place so kept is reused from next year.
2. Requests queue: pupils whose move this year takes them to a placement with limited places,
   newly identified pupils whose first placement has limited places, and pupils still waiting
   from earlier years.  Priority: years waited (longest first), then the tier order of
   ``priority.tiers`` (first = highest), then the need order of ``priority.needs`` (listed
   needs before unlisted ones), then a random tie-break (stream ``allocate``).
3. Round 0 gives each request its own placement while places last; round ``k`` offers each
   unplaced request the ``k``-th option of ``overflow.<placement>``: another placement
   (placed there if it has places, or unlimited ones), or ``out_of_area`` (a placement of
   the same type in another area, which takes no place of the pupil's own area; unlimited).
   Direct requests therefore come before overflow ones.
4. A request every option refused waits: a pupil who moved stays in the placement held
   before the move (a newly identified pupil waits in ``waiting_placement``) and asks again
   next year with one more year waited.  A waiting pupil whose placement changes by another
   move (e.g. at 16) stops waiting.

Outputs (:data:`ALLOC_VARS`): pupils waiting and the years they have waited (census stocks,
at the placement waited for, so their mean is the mean wait so far), pupils placed out of
area (census stock, at their placement), and admissions redirected by overflow during the
year (at the placement asked for: unmet demand for it).  Flows the engine tallies during the
year (``n_escalated`` ...) record the placement asked for; the census stock ``n_pupils``
records where pupils were placed.

Scenarios change places with modifiers of rate ``places`` (filters ``to`` = placements and
``areas``): ``multiply``, ``add`` or ``set`` the places of the years they cover, or ``hold``
them at the level of the census year before ``years`` begins (no new places).
"""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np

from simsend.config.provision import OUT_OF_AREA, ProvisionConfig
from simsend.config.toml import ConfigError
from simsend.dims import NEEDS, PLACEMENTS, TIERS
from simsend.io import file_sha256
from simsend.rates.parameters import ProvisionRules
from simsend.rates.sources import WrappedSource


def rules(cfg: ProvisionConfig) -> ProvisionRules:
    """Kernel arrays of the allocation rule."""
    n_p = len(PLACEMENTS)
    k = max([len(v) for v in cfg.overflow.values()] or [0])
    chain = np.full((n_p, max(k, 1)), -1, np.int64)
    for p, opts in cfg.overflow.items():
        for i, o in enumerate(opts):
            chain[PLACEMENTS.index(p), i] = n_p if o == OUT_OF_AREA else PLACEMENTS.index(o)
    rank = np.zeros((len(TIERS), len(NEEDS)), np.int64)
    for i, t in enumerate(cfg.tiers):
        rank[TIERS.index(t)] += (len(cfg.tiers) - i) * 16
    for i, n in enumerate(cfg.needs):
        rank[:, NEEDS.index(n)] += len(cfg.needs) - i
    return ProvisionRules(chain=chain, rank=rank,
                          wait_place=PLACEMENTS.index(cfg.waiting_placement))


def load_plan(cfg: ProvisionConfig, areas: tuple[str, ...], years: list[int]) -> np.ndarray:
    """Places per census year, area and placement: float ``(Y, A, P)``, ``inf`` = unlimited.

    Raises
    ------
    ConfigError
        On a malformed row (naming the file and line), when no row concerns the run's areas,
        or when an (area, placement) starts after the first simulated year.

    """
    path = cfg.plan
    areas = tuple(str(a) for a in areas)
    rows: dict[tuple[int, int], dict[int, float]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a leading BOM is dropped
            kept = [(i, line) for i, line in enumerate(f.read().splitlines(), start=1)
                    if not line.startswith("#")]
            reader = csv.DictReader(line for _, line in kept)
            need = {"area", "placement", "year", "places"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise ConfigError(f"{path}: expected columns {sorted(need)}, got "
                                  f"{reader.fieldnames}")
            for k, r in enumerate(reader, start=1):
                where = f"{path}: line {kept[k][0]}"
                if r["placement"] not in PLACEMENTS:
                    raise ConfigError(f"{where}: placement {r['placement']!r}; expected one of "
                                      f"{list(PLACEMENTS)}")
                try:
                    year = int(r["year"])
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}: year {r['year']!r} is not a whole "
                                      f"number") from None
                v = (r["places"] or "").strip()
                if v == "unlimited":
                    val = math.inf
                else:
                    try:
                        val = float(v)
                    except ValueError:
                        val = -1.0
                    if not (val >= 0 and val == int(val)):
                        raise ConfigError(f"{where}: places {v!r}; expected a whole number "
                                          f">= 0 or 'unlimited'")
                if r["area"] not in areas:
                    continue
                cell = (areas.index(r["area"]), PLACEMENTS.index(r["placement"]))
                if year in rows.setdefault(cell, {}):
                    raise ConfigError(f"{where}: a second row for ({r['area']}, "
                                      f"{r['placement']}, {year})")
                rows[cell][year] = val
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the provision plan: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the provision plan is not UTF-8 text; expected a CSV with "
                          "the columns area,placement,year,places") from None
    if not rows:
        raise ConfigError(f"{path}: no row concerns this run's areas {list(areas)[:5]}"
                          f"{' ...' if len(areas) > 5 else ''}")
    out = np.full((len(years), len(areas), len(PLACEMENTS)), math.inf)
    for (a, p), by_year in rows.items():
        ys = sorted(by_year)
        first = years[min(1, len(years) - 1)]
        if ys[0] > first:
            raise ConfigError(f"{path}: places of ({areas[a]}, {PLACEMENTS[p]}) start in "
                              f"{ys[0]}, after the first simulated year {first}; a plan "
                              "gives places from the run's baseline census (shipped: "
                              "england_2022 and england_2025; scripts/make_provision_plan.py "
                              "builds one)")
        for yi, y in enumerate(years):
            past = [u for u in ys if u <= y]
            out[yi, a, p] = by_year[past[-1]] if past else by_year[ys[0]]
    return out


def plan_hash(cfg: ProvisionConfig | None) -> dict[str, str]:
    """Input-file hash of the plan (for a run's provenance)."""
    return {} if cfg is None else {"provision_plan": file_sha256(cfg.plan)}


def kernel_places(places: np.ndarray) -> np.ndarray:
    """Places of one year as the kernel's int64 (-1 = unlimited; fractions rounded down)."""
    return np.where(np.isinf(places), -1, np.floor(np.clip(places, 0, None))).astype(np.int64)


class ProvisionSource(WrappedSource):
    """Wraps a parameter source: every draw's set carries the places and allocation rules."""

    def __init__(self, source, places: np.ndarray, rules: ProvisionRules):
        self.source, self.places, self.rules = source, places, rules

    def wrap(self, ps):
        """Return ``ps`` with ``places`` and ``provision`` attached."""
        return dataclasses.replace(ps, places=self.places, provision=self.rules)


def provision_source(source, cfg, areas: tuple[str, ...]):
    """Attach the config's provision plan to a parameter source (unchanged without one)."""
    if cfg.provision is None:
        return source
    years = list(range(cfg.run.start_year, cfg.run.end_year + 1))
    return ProvisionSource(source, load_plan(cfg.provision, areas, years), rules(cfg.provision))
