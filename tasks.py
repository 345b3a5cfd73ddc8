"""Invoke tasks: one per declared step, plus login, logout, status, the sandbox and the demo.

Nothing is declared here: each task comes from a declaration (``scripts.catalog``
for the client, ``sandbox.commands`` for the sandbox), built into a Collection
by ``scripts.cli``.  Steps read and write the .env file beside this file (or
``$ENV_FILE``).  Errors end in one line and a documented exit code;
``invoke --debug TASK`` (or ``KFDEX_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import logging

from sandbox.commands import COMMANDS as SANDBOX_COMMANDS
from scripts.catalog import COMMANDS
from scripts.cli import build_collection

# urllib3 logs whole URLs (with one-time codes) at debug level: keep it quiet even under --debug
logging.getLogger("urllib3").setLevel(logging.WARNING)

ns = build_collection((*COMMANDS, *SANDBOX_COMMANDS))
