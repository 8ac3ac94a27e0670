"""Reading TOML the user wrote: every check names the file and the key path.

The helpers each section parser uses (:mod:`simsend.config.run`, :mod:`~simsend.config.model`,
...): a :class:`Ctx` carries the file name, and each reader checks one value's type and range
and raises :class:`ConfigError` with the key path and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simsend.dims import AGES, MAX_AGE


class ConfigError(ValueError):
    """A user mistake in a config file: message names the file, key path and expectation."""


PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout (or installed tree) that holds ``models/`` and ``configs/`` beside ``simsend/``."""


class Ctx:
    """Carries the file name so every error names it."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, msg: str) -> ConfigError:
        """Return the error for ``key`` (a key path such as ``model.tiers.targeted``)."""
        return ConfigError(f"{self.path}: [{key}] {msg}")


def table(ctx: Ctx, raw: Any, key: str) -> dict:
    """Return ``raw`` when it is a TOML table."""
    if not isinstance(raw, dict):
        raise ctx.fail(key, f"expected a table, got {type(raw).__name__} {raw!r}")
    return raw


def check_keys(ctx: Ctx, raw: dict, key: str, allowed: set[str]) -> None:
    """Fail on the first key of table ``raw`` not in ``allowed``, naming its whole path."""
    for k in raw:
        if k not in allowed:
            path = f"{key}.{k}" if key else k
            raise ctx.fail(path, f"unknown key; expected one of {sorted(allowed)}")


def integer(ctx: Ctx, v: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``v`` when it is an integer (not a bool) within ``lo .. hi``."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ctx.fail(key, f"expected an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ctx.fail(key, f"value {v} out of range: expected {lo} <= value <= {hi}")
    return v


def number(ctx: Ctx, v: Any, key: str, lo: float | None = None, hi: float | None = None) -> float:
    """Return ``v`` as a finite float within ``lo .. hi`` (integers accepted)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ctx.fail(key, f"expected a number, got {v!r}")
    v = float(v)
    if not np.isfinite(v):
        raise ctx.fail(key, f"expected a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ctx.fail(key, f"value {v} out of range: expected {lo} <= value <= {hi}")
    return v


def prob(ctx: Ctx, v: Any, key: str) -> float:
    """Return ``v`` when it is a probability in [0, 1]."""
    v2 = number(ctx, v, key)
    if not 0.0 <= v2 <= 1.0:
        raise ctx.fail(key, f"probability {v2} outside [0, 1]")
    return v2


def string(ctx: Ctx, v: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
    """Return ``v`` when it is a string (one of ``choices`` when given)."""
    if not isinstance(v, str):
        raise ctx.fail(key, f"expected a string, got {v!r}")
    if choices is not None and v not in choices:
        raise ctx.fail(key, f"unknown value {v!r}; expected one of {list(choices)}")
    return v


def age_range(ctx: Ctx, s: str, key: str) -> tuple[int, int]:
    """Parse ``"5-10"`` or ``"11"`` into an inclusive age range within 0-25."""
    parts = s.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or hi is None or not 0 <= lo <= hi <= MAX_AGE:
        raise ctx.fail(key, f"age range {s!r}: expected 'A-B' or 'A' with 0 <= A <= B <= {MAX_AGE}")
    return lo, hi


def age_profile(ctx: Ctx, raw: Any, key: str, kind: str = "prob") -> np.ndarray:
    """Parse a number (all ages) or ``{"lo-hi" = value}`` covering 0-25 exactly once."""
    out = np.full(len(AGES), np.nan)
    if not isinstance(raw, dict):
        val = prob(ctx, raw, key) if kind == "prob" else number(ctx, raw, key, lo=0.0)
        out[:] = val
        return out
    for rng, v in raw.items():
        lo, hi = age_range(ctx, rng, f"{key}.{rng}")
        val = prob(ctx, v, f'{key}."{rng}"') if kind == "prob" else number(
            ctx, v, f'{key}."{rng}"', lo=0.0)
        if not np.all(np.isnan(out[lo:hi + 1])):
            raise ctx.fail(f'{key}."{rng}"', "age range overlaps another range")
        out[lo:hi + 1] = val
    missing = [a for a in AGES if np.isnan(out[a])]
    if missing:
        raise ctx.fail(key, f"age ranges must cover ages 0-{MAX_AGE}; missing ages {missing}")
    return out


def mix_by_age(ctx: Ctx, raw: Any, key: str, labels: tuple[str, ...]) -> np.ndarray:
    """Parse ``{"lo-hi" = {label = share, ...}}`` into a (26, len(labels)) row-stochastic array."""
    raw = table(ctx, raw, key)
    out = np.full((len(AGES), len(labels)), np.nan)
    for rng, mix in raw.items():
        k = f'{key}."{rng}"'
        lo, hi = age_range(ctx, rng, k)
        mix = table(ctx, mix, k)
        row = np.zeros(len(labels))
        for lab, v in mix.items():
            if lab not in labels:
                raise ctx.fail(f"{k}.{lab}", f"unknown label; expected one of {list(labels)}")
            row[labels.index(lab)] = prob(ctx, v, f"{k}.{lab}")
        if abs(row.sum() - 1.0) > 1e-6:
            raise ctx.fail(k, f"shares must sum to 1, got {row.sum():.6g}")
        if not np.all(np.isnan(out[lo:hi + 1])):
            raise ctx.fail(k, "age range overlaps another range")
        out[lo:hi + 1] = row / row.sum()
    missing = [a for a in AGES if np.isnan(out[a, 0])]
    if missing:
        raise ctx.fail(key, f"age ranges must cover ages 0-{MAX_AGE}; missing ages {missing}")
    return out


def shipped_or_path(ctx: Ctx, name: str, key: str, folder: Path, suffix: str, base: Path,
                    what: str, kind=None) -> Path:
    """Resolve a file a config names; it must exist.

    A bare name (no slash, no ``suffix``) is ``folder/<name><suffix>`` shipped beside the
    package; anything else is a path, relative to the config's folder.  ``kind(stem)``, if
    given, says which shipped files are of the kind asked for (the ones the error lists).
    """
    if name and "/" not in name and "\\" not in name and not name.endswith(suffix):
        p = folder / f"{name}{suffix}"
        if not p.is_file():
            have = sorted(q.stem for q in folder.glob(f"*{suffix}")
                          if kind is None or kind(q.stem))
            where = folder.relative_to(PROJECT_ROOT).as_posix()
            raise ctx.fail(key, f"no shipped {what} {name!r} ({where}/ has {have}); give a "
                                "file path instead")
        return p
    p = Path(name)
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise ctx.fail(key, f"file not found: {p}")
    return p


BOM = "\ufeff"
"""The byte-order mark some editors (Notepad, Excel) write at the start of a UTF-8 file."""


def read_text(path: Path, what: str) -> str:
    """Read a UTF-8 file the user named; a missing or unreadable one is a :class:`ConfigError`.

    A leading byte-order mark (:data:`BOM`) is dropped: TOML does not allow one, and an editor
    that writes it means no more than UTF-8.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return path.read_text(encoding="utf-8").removeprefix(BOM)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
