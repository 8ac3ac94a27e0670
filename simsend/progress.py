"""Progress and log output: a rich bar with ETA on a terminal, plain log lines otherwise.

Commands take ``--quiet`` (errors only) and ``--verbose`` (debug log lines).  When standard
error is a terminal a long loop shows a progress bar with an ETA; when it is not (CI, a pipe,
a log file) the same progress is written as plain ``logging`` lines, at most one every
``interval`` seconds plus the first and the last.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

LOGGER = "simsend"


def configure_logging(quiet: bool = False, verbose: bool = False,
                      stream: TextIO | None = None) -> logging.Logger:
    """Set up the ``simsend`` logger for a command.

    Parameters
    ----------
    quiet : bool
        Only warnings and errors.
    verbose : bool
        Debug lines too (ignored with ``quiet``).
    stream : file, optional
        Where log lines go (default standard error).

    Returns
    -------
    logging.Logger
        The ``simsend`` logger.

    """
    log = logging.getLogger(LOGGER)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    for h in list(log.handlers):
        if getattr(h, "_simsend", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    handler._simsend = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.propagate = False
    return log


class Progress:
    """Report ``(done, total)`` progress as a bar on a terminal or as log lines.

    Use as a context manager and call it with ``(done, total)``; this is the ``progress``
    callback that :func:`simsend.api.run` takes.

    Parameters
    ----------
    label : str
        What is being counted ("draws").
    quiet : bool
        Report nothing.
    tty : bool, optional
        Force terminal (bar) or plain mode; default: whether standard error is a terminal.
    interval : float
        Seconds between plain log lines.

    Examples
    --------
    >>> with Progress("draws", quiet=True) as bar:
    ...     bar(1, 2)
    ...     bar(2, 2)

    """

    def __init__(self, label: str, quiet: bool = False, tty: bool | None = None,
                 interval: float = 10.0):
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.interval = interval
        self.log = logging.getLogger(LOGGER)
        self._bar = None
        self._task = None
        self._start = 0.0
        self._last = -float("inf")
        self._first: tuple[int, float] | None = None  # (done, time) at the first report

    @property
    def mode(self) -> str:
        """``"off"``, ``"bar"`` or ``"log"``."""
        return "off" if self.quiet else "bar" if self.tty else "log"

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        if self.mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as _Rich

            self._bar = _Rich(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                              transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def __call__(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` items are finished.

        ``done == 0`` starts a new cycle (a bar reused for each of several loops, such as a
        rolling backtest's forecasts): elapsed time and the ETA count from there.
        """
        if self.mode == "off":
            return
        if done == 0:
            self._start = time.perf_counter()
            self._last = -float("inf")
            self._first = None
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(self.label, total=total)
            elif done == 0:
                self._bar.reset(self._task, total=total)
            self._bar.update(self._task, completed=done)
            return
        if done == 0:
            return
        now = time.perf_counter()
        if done < total and done > 1 and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._start
        if self._first is None or done <= self._first[0]:
            self._first = (done, now)  # the first items carry start-up (JIT, data): no rate
            eta = "unknown yet"
        else:
            rate = (now - self._first[1]) / (done - self._first[0])
            eta = f"{rate * (total - done):.1f}s"
        self.log.info("%s %d/%d (%.0f%%) elapsed %.1fs eta %s", self.label, done, total,
                      100.0 * done / max(total, 1), elapsed, eta)
