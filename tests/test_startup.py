"""Listing tasks imports only what listing needs: no HTTP client, retry library, .env parser, Locust or sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

HEAVY = (
    "requests", "urllib3", "tenacity", "dotenv", "locust", "gevent", "rich", "hdrh", "plotly",
    "grpc", "tritonclient", "h2", "sandbox.control", "mlserver",
)  # fmt: skip


def test_building_the_task_list_imports_nothing_heavy() -> None:
    probe = "import sys, json, tasks; print(json.dumps(sorted(sys.modules)))"
    ran = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(ran.stdout))
    assert [name for name in HEAVY if name in loaded] == []
