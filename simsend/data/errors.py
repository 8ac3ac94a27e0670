"""Errors and validation findings of the data layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class DataError(ValueError):
    """A user mistake in data: the message names file, row, column, value and expectation.

    Parameters
    ----------
    message : str
        The whole message (what the command line prints).
    findings : sequence of Finding, optional
        The same problems one by one, for a :class:`Report` (``simsend validate`` lists them
        instead of stopping at the first).

    """

    def __init__(self, message: str, findings: Sequence[Finding] = ()):
        super().__init__(message)
        self.findings = tuple(findings)


def cell_error(file: str, row: int, col: str, value, why: str) -> DataError:
    """Return a :class:`DataError` naming the file, line (header = 1), column and value.

    Examples
    --------
    >>> str(cell_error("t.csv", 3, "count", "-1", "expected a whole number >= 0"))
    "t.csv: row 3: column 'count': expected a whole number >= 0, got '-1'"

    """
    return DataError(f"{file}: row {row}: column {col!r}: {why}, got {value!r}")


@dataclass(frozen=True)
class Finding:
    """One problem found in a data file.

    Attributes
    ----------
    severity : str
        ``"error"`` (the data cannot be used as is) or ``"warning"``.
    file : str
        File name (or ``"spec"`` for problems with the data specification itself).
    row : int or None
        Line number in the file, counting the header as line 1 (so the first data row is 2);
        None when the finding is about the whole file or a column.
    column : str or None
        Column concerned.
    value : object
        The offending value (as read).
    message : str
        What was expected.
    area : str or None
        The area code the row is about, where a check knows it (so that a report can keep
        to the areas of a run).

    """

    severity: str
    file: str
    row: int | None
    column: str | None
    value: Any
    message: str
    area: str | None = None

    def format(self) -> str:
        """Return the finding as one line ``severity: file:row: column=value: message``."""
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        what = "" if self.column is None else f" {self.column}={self.value!r}:"
        return f"{self.severity}: {where}:{what} {self.message}"


@dataclass
class Report:
    """Findings of :func:`simsend.data.validate_data`.

    Attributes
    ----------
    findings : list of Finding
        Every problem found, errors and warnings.
    files : list of str
        Files checked.

    """

    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        """The error findings."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The warning findings."""
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, severity: str, file: str, row: int | None, column: str | None, value: Any,
            message: str, area: str | None = None) -> None:
        """Append a finding (``area``: the area code the row is about, when known)."""
        self.findings.append(Finding(severity, file, row, column, value, message, area))

    def format(self, limit: int | None = None) -> str:
        """Human-readable report: one line per finding and a summary line.

        Parameters
        ----------
        limit : int, optional
            Show at most this many findings (the summary still counts all).

        """
        if not self.findings:
            return f"ok: {len(self.files)} files checked, no findings"
        shown = self.findings if limit is None else self.findings[:limit]
        lines = [f.format() for f in shown]
        if limit is not None and len(self.findings) > limit:
            lines.append(f"... {len(self.findings) - limit} more findings not shown")
        ne, nw = len(self.errors), len(self.warnings)
        lines.append(f"{ne} error{'s' if ne != 1 else ''}, {nw} warning{'s' if nw != 1 else ''}"
                     f" ({len(self.files)} files checked)")
        return "\n".join(lines)

    def raise_errors(self, context: str = "") -> None:
        """Raise :class:`DataError` listing the errors, if any."""
        errs = self.errors
        if errs:
            head = f"{context}: " if context else ""
            more = f"\n... and {len(errs) - 10} more errors" if len(errs) > 10 else ""
            raise DataError(head + "invalid data:\n" + "\n".join(f.format() for f in errs[:10])
                            + more, errs)
