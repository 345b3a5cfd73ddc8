"""Benchmark: the tool against the manual curl recipe it replaces, measured in the same run.

Starts a sandbox (kf15, the generation the recipe was written for), then times,
as whole processes, the way a person runs them:

- login: the recipe's curl chain (follow to Dex, post the form, approval,
  callback, cut the cookie out of the headers) against ``invoke login --force``;
- infer: one ``curl`` with the cookie against ``invoke infer --payload iris``;
- and, inside one process, 200 keep-alive calls with a plain ``requests``
  session against the same calls through ``scripts.gateway.Gateway`` (timeouts,
  retry wrapper, origin check).

Reports the median of ``--runs`` rounds and the ratio tool / recipe.  Run:
``python bench/compare.py [--runs 7]`` (needs curl and the sandbox extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from sandbox import control  # noqa: E402
from sandbox.gateway import DEMO_LOGIN, DEMO_PASSWORD  # noqa: E402
from scripts.environment import Environment  # noqa: E402
from scripts.gateway import Gateway  # noqa: E402
from scripts.settings import gateway_settings  # noqa: E402
from scripts.state import EnvFile  # noqa: E402


def _curl(*args: str) -> str:
    return subprocess.run(["curl", "-s", *args], check=True, capture_output=True, text=True).stdout


def recipe_login(base: str) -> str:
    """The manual recipe, step by step with curl; returns the Cookie header value."""
    dex = urljoin(base, _curl("-o", "/dev/null", "-w", "%{redirect_url}", base + "/"))
    login_url = urljoin(base, _curl("-o", "/dev/null", "-w", "%{redirect_url}", dex))
    approval = _curl("-o", "/dev/null", "-w", "%{redirect_url}", "-d", f"login={DEMO_LOGIN}&password={DEMO_PASSWORD}", login_url)
    callback = _curl("-o", "/dev/null", "-w", "%{redirect_url}", urljoin(base, approval))
    headers = _curl("-o", "/dev/null", "-D", "-", urljoin(base, callback))
    cookie = next(line for line in headers.splitlines() if line.lower().startswith("set-cookie: authservice_session="))
    return cookie.split(":", 1)[1].split(";", 1)[0].strip()


def recipe_infer(host: str, node_port: str, cookie: str) -> str:
    return _curl(
        "-H",
        f"Cookie: {cookie}",
        "-H",
        "Content-Type: application/json",
        "-d",
        f"@{ROOT / 'payloads' / 'iris.json'}",
        f"http://{host}:{node_port}/v2/models/sklearn-irisv2/infer",
    )


def _time(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds per measurement (median reported)")
    runs = parser.parse_args().runs
    sandbox = control.start("kf15")
    folder = Path(tempfile.mkdtemp(prefix="kfdex-bench-"))
    env_path = folder / ".env"
    environment = dict(os.environ, ENV_FILE=str(env_path), KUBECACHEDIR=str(folder / "kubecache"))
    invoke = str(Path(sys.executable).with_name("invoke"))

    def tool(*args: str) -> None:
        subprocess.run([invoke, *args], check=True, capture_output=True, env=environment, cwd=ROOT)

    try:
        settings = sandbox.settings()
        settings.pop("SANDBOX_DIR")
        EnvFile(env_path).update(settings)
        tool("login")
        tool("expose-nodeport")
        state = EnvFile(env_path).read()
        host, node_port = state["INGRESS_HOST"], state["NODE_PORT"]
        base = f"http://{host}:{state['INGRESS_PORT']}"
        cookie = recipe_login(base)
        assert '"data":[1,1]' in recipe_infer(host, node_port, cookie).replace(" ", "")

        rows = [
            ("login (5 requests)", _time(lambda: recipe_login(base), runs), _time(lambda: tool("login", "--force"), runs)),
            ("infer (1 request)", _time(lambda: recipe_infer(host, node_port, cookie), runs), _time(lambda: tool("infer"), runs)),
        ]
        # in one process: what the timeout + retry wrapper and origin check add to a keep-alive call
        state = EnvFile(env_path).read()
        body = json.loads((ROOT / "payloads" / "iris.json").read_text())
        headers = {"Cookie": state["AUTH_COOKIE"]}
        url = f"http://{host}:{node_port}/v2/models/sklearn-irisv2/infer"
        plain = requests.Session()
        gateway = Gateway(gateway_settings(state, port_key="NODE_PORT", scheme="http"), Environment.from_process())
        calls = 200
        rows.append(
            (
                f"{calls} infer calls in one process",
                _time(lambda: [plain.post(url, json=body, headers=headers, timeout=30) for _ in range(calls)], runs),
                _time(lambda: [gateway.send("POST", url, json=body, headers=headers) for _ in range(calls)], runs),
            )
        )
    finally:
        control.stop(sandbox.folder)
    print(f"median of {runs} runs, whole processes, sandbox kf15, {os.cpu_count()} cores")
    print("| what | baseline (curl recipe / plain requests) | kfdex | kfdex / baseline |")
    print("|---|---|---|---|")
    for name, baseline, ours in rows:
        print(f"| {name} | {baseline * 1000:.0f} ms | {ours * 1000:.0f} ms | {ours / baseline:.1f}× |")


if __name__ == "__main__":
    main()
