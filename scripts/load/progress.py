"""The live progress line of a load run on stderr (rich.progress): requests done, current rate, errors.

``live_progress`` is a context manager that yields the callback ``run_load``
takes.  It shows nothing when stderr is not a terminal or when asked not to,
so piped and ``--json`` runs stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from .engine import Progress


@contextmanager
def live_progress(enabled: bool = True, stream: TextIO | None = None) -> Iterator[Callable[[Progress], None] | None]:
    """A progress callback drawing on ``stream`` (stderr), or None when off or not a terminal."""
    stream = stream or sys.stderr
    if not enabled or not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("load"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.1f} req/s"),
        TextColumn("errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
    )
    task = bar.add_task("load", total=None, rate=0.0, errors=0)
    window: list[tuple[float, int]] = []

    def update(progress: Progress) -> None:
        window.append((progress.elapsed, progress.done))
        while len(window) > 2 and window[-1][0] - window[0][0] > 2.0:
            window.pop(0)
        (since, before), (now, done) = window[0], window[-1]
        rate = (done - before) / (now - since) if now > since else 0.0
        if progress.total is not None:
            bar.update(task, total=progress.total, completed=done, rate=rate, errors=progress.errors)
        else:
            bar.update(task, total=None, completed=done, rate=rate, errors=progress.errors)

    with bar:
        yield update
