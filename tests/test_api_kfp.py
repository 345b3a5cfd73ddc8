"""``Kubeflow.kfp_client()``: the real kfp SDK driven through kfdex's credential, against the sandbox's Pipelines stand-in.

Needs the ``kfp`` extra (kfp pins requests and urllib3 exactly, so CI may run
these in a virtual environment of their own); without it they are skipped, and
one test checks the one-line error instead.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from sandbox.control import Sandbox
from scripts.api import Kubeflow
from scripts.core.errors import UsageError
from tests.helpers import Env, here

HAS_KFP = importlib.util.find_spec("kfp") is not None
needs_kfp = pytest.mark.skipif(not HAS_KFP, reason="the kfp extra is not installed: pip install '.[kfp]'")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kfp reads and writes ~/.config/kfp/context.json: keep the user's out of it."""
    monkeypatch.setenv("HOME", str(tmp_path))


def _pipelines(client: object) -> list[str]:
    listed = client.list_pipelines()  # type: ignore[attr-defined]
    return [pipeline.display_name for pipeline in listed.pipelines]


@needs_kfp
@pytest.mark.usefixtures("home")
@pytest.mark.parametrize("token", [False, True])
def test_kfp_client_lists_pipelines_through_the_session(sandbox_env: Env, token: bool) -> None:
    kubeflow = Kubeflow.from_env(sandbox_env.path, environment=here()).login(token=token)
    client = kubeflow.kfp_client()
    assert _pipelines(client) == ["[Tutorial] Data passing in python components"]


@needs_kfp
@pytest.mark.usefixtures("home")
def test_kfp_client_renews_ahead_over_three_session_lifetimes(sandbox_env: Env, cluster: Sandbox) -> None:
    cluster.configure(session_seconds=2)
    kubeflow = Kubeflow.from_env(sandbox_env.path, environment=here()).login()
    client = kubeflow.kfp_client()
    started = time.monotonic()
    while time.monotonic() - started < 6.5:
        assert len(_pipelines(client)) == 1
        time.sleep(0.1)
    assert kubeflow.renewals >= 2


@pytest.mark.skipif(HAS_KFP, reason="kfp is installed: the missing-extra error cannot show")
def test_kfp_client_without_the_extra_is_one_line_naming_it(sandbox_env: Env) -> None:
    with pytest.raises(UsageError, match=r"needs the optional extra kfp \(kfp missing\): pip install 'kfdex\[kfp\]'"):
        Kubeflow.from_env(sandbox_env.path, environment=here()).kfp_client()
