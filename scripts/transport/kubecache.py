"""kubectl's discovery cache for a sandbox's Kubernetes API: removed by ``sandbox-down`` only when that sandbox made it.

kubectl caches API discovery per server under ``$KUBECACHEDIR/discovery``
(``~/.kube/cache/discovery`` by default), in a folder named after the host and
port (``127.0.0.1_40159``).  ``sandbox-up`` notes that folder in the sandbox's
own folder when it does not exist yet; while the sandbox runs it holds that
port, so a folder found there at ``sandbox-down`` was made by kubectl talking
to this sandbox, and goes with it.  Without the note (a folder that was there
before, or a sandbox folder a reboot took) nothing is removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

NOTE = "kubecache.json"  # in the sandbox folder: the discovery folder that did not exist at sandbox-up


def discovery_folder(port: int) -> Path:
    """Where kubectl (a child of this process, with its environment) caches discovery for 127.0.0.1:``port``."""
    base = os.environ.get("KUBECACHEDIR") or str(Path.home() / ".kube" / "cache")
    return Path(base).expanduser() / "discovery" / re.sub(r"[^A-Za-z0-9_.\-]", "_", f"127.0.0.1:{port}")


def note_if_absent(sandbox_folder: Path, port: int) -> None:
    """Remember the discovery folder for ``port`` when it does not exist yet."""
    folder = discovery_folder(port)
    if not (folder.exists() or folder.is_symlink()):
        (sandbox_folder / NOTE).write_text(json.dumps({"discovery": str(folder)}))


def remove_made(sandbox_folder: Path) -> None:
    """Remove the discovery folder noted in ``sandbox_folder`` (already proven the sandbox's) if kubectl made it since."""
    try:
        folder = Path(json.loads((sandbox_folder / NOTE).read_text())["discovery"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid():
        shutil.rmtree(folder, ignore_errors=True)
