"""The ``[reform]`` table: the reform timeline (applied by :mod:`simsend.rates.reform`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import simsend.config.toml as toml
from simsend.dims import MAX_AGE


@dataclass(frozen=True)
class ReformConfig:
    """The reform timeline (``[reform]``): dates and the review of existing EHC plans.

    Census years ``<= legislation_year`` run under current law.  In the years after it the
    targeted tiers hold ISPs instead of SEN support (new moves only: dual running), and up to
    and including ``steady_state_year`` specialist-tier pupils reaching a ``review_ages`` age
    (phase transfer) who would otherwise stay are moved to targeted-plus with probability
    ``review_share``; escalation into the specialist tier is multiplied by ``entry_factor``
    after the legislation year.  The defaults change no rate (current-law rates continue):
    a stricter threshold is a scenario (see :mod:`simsend.rates.reform`).
    """

    legislation_year: int = 2029
    steady_state_year: int = 2035
    review_share: float = 0.0
    review_ages: tuple[int, ...] = (5, 11, 16)
    entry_factor: float = 1.0


def parse_reform(ctx: toml.Ctx, raw: dict, key: str = "reform",
                  base: ReformConfig | None = None) -> ReformConfig:
    """Parse a ``[reform]`` table; keys left out keep ``base``'s values."""
    d = base or ReformConfig()
    toml.check_keys(ctx, raw, key, {f.name for f in dataclasses.fields(ReformConfig)})
    leg = toml.integer(ctx, raw.get("legislation_year", d.legislation_year),
               f"{key}.legislation_year", 2000, 2100)
    steady = toml.integer(ctx, raw.get("steady_state_year", d.steady_state_year),
                  f"{key}.steady_state_year", 2000, 2100)
    if steady < leg:
        raise ctx.fail(f"{key}.steady_state_year",
                       f"{steady} must not be before legislation_year {leg}")
    ages_raw = raw.get("review_ages", list(d.review_ages))
    if not isinstance(ages_raw, list):
        raise ctx.fail(f"{key}.review_ages", f"expected a list of ages 0-{MAX_AGE}")
    ages = tuple(toml.integer(ctx, a, f"{key}.review_ages[{i}]", 0, MAX_AGE)
                 for i, a in enumerate(ages_raw))
    return ReformConfig(
        legislation_year=leg, steady_state_year=steady,
        review_share=toml.prob(ctx, raw.get("review_share", d.review_share), f"{key}.review_share"),
        review_ages=ages,
        entry_factor=toml.number(ctx, raw.get("entry_factor", d.entry_factor),
                                 f"{key}.entry_factor", 0.0, 10.0),
    )
