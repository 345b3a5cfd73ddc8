"""Invoke tasks: one per declared step, plus login, logout, status, credential, the sandbox and the demo.

Nothing is declared here: each task comes from a declaration found by
``scripts.app.catalog`` and built into a Collection by ``scripts.app.cli`` (the
installed ``kfdex`` command runs the same Collection).  In this checkout the
state is the .env file beside this file (or ``$ENV_FILE``).  Errors end in one
line and a documented exit code; ``invoke --debug TASK`` (or ``KFDEX_DEBUG=1``)
shows the traceback.
"""

from __future__ import annotations

from pathlib import Path

from scripts.app.catalog import COMMANDS
from scripts.app.cli import build_collection

ns = build_collection(COMMANDS)
ns.configure({"kfdex": {"env_folder": str(Path(__file__).resolve().parent)}})
