"""A sandbox that ends with the process that asked for it: ``python -m sandbox.watchdog FOLDER ID PID START [EXTRA]``.

``kfdex demo`` starts a sandbox for the length of one run, and ``kfdex
sandbox-up`` one that outlives it once the .env records it.  Ctrl-C, SIGTERM and
SIGHUP reach their own cleanup; SIGKILL (or an OOM kill) cannot.  So such a
sandbox carries this small process, started first and recorded with the others,
until it is handed over (``control.release``: sandbox-up's record is written):
it polls the demo's pid and kernel start time, and once that process is gone it
ends any process that names the sandbox's folder and started after it (a spawn
the kill cut off before it was recorded, which may still be writing into the
folder), then stops the sandbox by its record (``control.stop``, which checks the
folder's marker and each process's start time, and removes the folder last),
and removes ``EXTRA``, the demo's own
temporary folder, when that is a ``kfdex-demo-*`` folder of this user in the
temporary directory.  When the demo stops the sandbox itself, this process is
among those it stops.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from . import control

DEMO_PREFIX = "kfdex-demo-"
POLL_SECONDS = 0.5


def _stragglers(folder: Path) -> list[int]:
    """Processes naming the sandbox's folder that started after this one: spawned by the same start, which was
    killed before it could record them (the folder's name is random, and this process was its first)."""
    since = int(control.start_time(os.getpid()) or 0)
    return [pid for pid in control.naming(folder) if int(control.start_time(pid) or 0) >= since]


def watch(folder: Path, sandbox_id: str, pid: int, start: str, extra: Path | None) -> None:
    """Wait while ``pid`` (started at ``start``) runs and the sandbox folder exists; then clean up after it."""
    while True:
        # handed over (written before its starter exits) or stopped by its owner: nothing to do
        if not folder.exists() or (folder / control.RELEASED).exists():
            return
        if not control.alive(pid, start):
            break
        time.sleep(POLL_SECONDS)
    # the unrecorded first: a model process the kill cut off still writes into the folder (its model files),
    # and would make it again after stop removed it
    control.terminate(_stragglers(folder))
    control.stop(folder, sandbox_id)
    if extra is not None and not control.temporary_of_ours(extra, DEMO_PREFIX):  # what the demo makes
        shutil.rmtree(extra, ignore_errors=True)


def main(arguments: list[str]) -> None:
    folder, sandbox_id, pid, start = Path(arguments[0]), arguments[1], int(arguments[2]), arguments[3]
    extra = Path(arguments[4]) if len(arguments) > 4 and arguments[4] else None
    watch(folder, sandbox_id, pid, start, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
