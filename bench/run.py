"""Benchmark: kfdex against the tools and scripts it replaces, every pair measured in the same run.

Starts a sandbox (kf191), mints a ServiceAccount token for the gateway and
opens the predictor's NodePort through the sandbox's Kubernetes API, then:

- throughput (requests per second for the iris V2 call with that token):
  on the NodePort, wrk (``-t2 -c4``), ``kfdex load`` (the engine, concurrency
  4), a curl-per-request loop, and Locust with 2 local workers; through the
  gateway (ingress), wrk and ``kfdex load``.  wrk and the engine alternate for
  ``--rounds`` rounds and the medians are reported, so that a busy neighbour
  hurts both alike;
- login (kf15, the generation the manual recipe was written for): ``kfdex
  login --force`` against the same flow as one plain ``requests`` script and
  against the manual curl sequence, as whole processes;
- start-up: ``kfdex --list`` against ``python -c "import invoke"``, and one
  ``kfdex infer`` against a ``python -c "import requests; requests.post(...)"``
  one-liner making the same call, as whole processes;
- capacity and fixed rate (``bench/clients.py``): wrk, hey, vegeta, ``kfdex
  load`` and ``kfdex locust --workers 1`` against nginx on one core, each at
  its best concurrency of 4, 8 and 16 on the other; ``kfdex load --rate R``
  beside ``vegeta attack -rate R`` on the NodePort and on nginx.

Prints Markdown tables with each row's ratio to its baseline.  A row whose
tool is missing (wrk, hey, vegeta without Go, curl, Locust) is skipped with a
note.  Run: ``python bench/run.py [--rounds 3] [--sections
throughput,capacity,rate,login]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from sandbox import control  # noqa: E402
from sandbox.gateway import MODEL_NAME, MODEL_NAMESPACE  # noqa: E402
from scripts.core.boundary import signals_as_interrupts  # noqa: E402
from scripts.load.engine import LoadTarget, run_load  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clients  # noqa: E402  (bench/clients.py: capacity against nginx, fixed rate beside vegeta)

PATH = f"/v2/models/{MODEL_NAME}/infer"
SECTIONS = ("throughput", "capacity", "rate", "login")
BODY = (ROOT / "payloads" / "iris.json").read_bytes()
AUDIENCE = "istio-ingressgateway.istio-system.svc.cluster.local"


def token_and_node_port(sandbox: control.Sandbox) -> tuple[str, int]:
    """A gateway token (as `kubectl create token`) and a NodePort to the predictor (as `kubectl expose`)."""
    api = f"http://127.0.0.1:{sandbox.api_port}/api/v1/namespaces/{MODEL_NAMESPACE}"
    token = requests.post(
        f"{api}/serviceaccounts/default-editor/token",
        json={"spec": {"audiences": [AUDIENCE], "expirationSeconds": 3600}},
        timeout=10,
    ).json()["status"]["token"]
    pod = next(p for p in requests.get(f"{api}/pods", timeout=10).json()["items"] if p["metadata"]["name"].startswith(MODEL_NAME))
    service = {
        "metadata": {"name": "bench-nodeport"},
        "spec": {"type": "NodePort", "selector": pod["metadata"]["labels"], "ports": [{"port": 8080, "targetPort": 8080}]},
    }
    created = requests.post(f"{api}/services", json=service, timeout=10).json()
    return token, int(created["spec"]["ports"][0]["nodePort"])


def wrk(url: str, headers: dict[str, str], seconds: int, folder: Path) -> float:
    script = folder / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(BODY.decode())}"]
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o600)
    out = subprocess.run(
        ["wrk", "-t2", "-c4", f"-d{seconds}s", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1])


def engine(url: str, headers: dict[str, str], count: int) -> float:
    report = run_load(LoadTarget(url, "POST", headers, BODY), concurrency=4, requests=count)
    if report.errors:
        raise SystemExit(f"the engine saw errors: {report.errors}")
    return report.requests / report.duration_s


def curl_loop(url: str, headers: dict[str, str], count: int, folder: Path) -> float:
    header_file = folder / "headers"  # -H @file: the token stays out of argv
    header_file.write_text("".join(f"{name}: {value}\n" for name, value in headers.items()))
    header_file.chmod(0o600)
    body_file = folder / "body.json"
    body_file.write_bytes(BODY)
    started = time.perf_counter()
    for _ in range(count):
        code = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                f"@{header_file}",
                "--data-binary",
                f"@{body_file}",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if code != "200":
            raise SystemExit(f"curl got {code}")
    return count / (time.perf_counter() - started)


def locust(url: str, headers: dict[str, str], seconds: int) -> float:
    from scripts.load.locust_run import run_local

    report = run_local(LoadTarget(url, "POST", headers, BODY), workers=2, users=4, spawn_rate=100, run_time=f"{seconds}s")
    if report.errors:
        raise SystemExit(f"locust saw errors: {report.errors}")
    return report.requests / report.duration_s


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


def process_seconds(runs: int, *commands: list[str], env: dict[str, str] | None = None) -> list[float]:
    """Median wall time of each command as a whole process, the commands taking turns run by run."""
    samples: list[list[float]] = [[] for _ in commands]
    for _ in range(runs + 1):  # the first round warms caches and is not counted
        for index, command in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
            samples[index].append(time.perf_counter() - started)
    return [statistics.median(taken[1:]) for taken in samples]


# the login as one plain requests script: what a person would write without the tool (kf15 flow)
PLAIN_LOGIN = """
import html, os, re, sys, requests
base, login, password = sys.argv[1], sys.argv[2], os.environ["KFDEX_BENCH_PASSWORD"]
session = requests.Session()
page = session.get(base + "/", timeout=30)
action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
answer = session.post(requests.compat.urljoin(page.url, action), data={"login": login, "password": password}, timeout=30)
assert session.cookies.get("authservice_session"), answer.status_code
"""


def recipe_login(base: str, login: str, folder: Path) -> list[str]:
    """The manual recipe as a shell script of curl calls (follow to Dex, post the form, approval, callback, cut the cookie)."""
    script = folder / "recipe.sh"
    script.write_text(
        f"""set -e
base={base}
dex=$(curl -s -o /dev/null -w '%{{redirect_url}}' "$base/")
form=$(curl -s -o /dev/null -w '%{{redirect_url}}' "$dex")
approval=$(curl -s -o /dev/null -w '%{{redirect_url}}' --data-urlencode "login={login}" --data-urlencode "password@"<(printf %s "$KFDEX_BENCH_PASSWORD") "$form")
callback=$(curl -s -o /dev/null -w '%{{redirect_url}}' "$approval")
curl -s -o /dev/null -D - "$callback" | grep -i '^set-cookie: authservice_session=' >/dev/null
"""
    )
    return ["bash", str(script)]


def login_and_startup(sandbox: control.Sandbox, runs: int, folder: Path) -> list[tuple[str, str, float, str, float]]:
    """Rows of (what, baseline, its seconds, kfdex, its seconds) for the login and the start-up."""
    from sandbox.gateway import DEMO_LOGIN, DEMO_PASSWORD
    from scripts.core.state import EnvFile

    kfdex = shutil.which("kfdex", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).with_name("invoke"))
    name = Path(kfdex).name
    env_path = folder / ".env"
    settings = sandbox.settings()
    settings.pop("SANDBOX_DIR")
    EnvFile(env_path).update(settings)
    variables = dict(
        os.environ, ENV_FILE=str(env_path), KUBECACHEDIR=str(folder / "kubecache"), KFDEX_BENCH_PASSWORD=DEMO_PASSWORD
    )
    sandbox.configure(flavor="kf15")
    for step in (["login"], ["expose-nodeport"]):
        subprocess.run([kfdex, *step], check=True, capture_output=True, env=variables, cwd=ROOT)
    state = EnvFile(env_path).read()
    base = f"http://127.0.0.1:{state['INGRESS_PORT']}"
    url = f"http://127.0.0.1:{state['NODE_PORT']}{PATH}"
    python = sys.executable
    one_call = (  # the cookie comes from the environment, as a careful script would take it: never in argv
        "import os, requests; requests.post("
        f"{url!r}, data=open({str(ROOT / 'payloads' / 'iris.json')!r}, 'rb').read(), "
        "headers={'Content-Type': 'application/json', 'Cookie': os.environ['KFDEX_BENCH_COOKIE']}, timeout=30).raise_for_status()"
    )
    variables["KFDEX_BENCH_COOKIE"] = state["AUTH_COOKIE"]
    plain, recipe, ours = process_seconds(
        runs,
        [python, "-c", PLAIN_LOGIN, base, DEMO_LOGIN],
        recipe_login(base, DEMO_LOGIN, folder),
        [kfdex, "login", "--force"],
        env=variables,
    )
    bare, listing = process_seconds(runs, [python, "-c", "import invoke"], [kfdex, "--list"], env=variables)
    posted, inferred = process_seconds(runs, [python, "-c", one_call], [kfdex, "infer"], env=variables)
    sandbox.configure(flavor="kf191")
    return [
        ("login (kf15)", "plain requests script", plain, f"{name} login --force", ours),
        ("login (kf15)", "manual curl sequence (5 curl calls)", recipe, f"{name} login --force", ours),
        ("start-up", 'python -c "import invoke"', bare, f"{name} --list", listing),
        ("one call", "python -c requests.post(...)", posted, f"{name} infer", inferred),
    ]


def throughput_rows(
    endpoints: dict[str, tuple[str, dict[str, str]]], options: argparse.Namespace, folder: Path
) -> list[tuple[str, str, float | None, str]]:
    """wrk against the engine on the NodePort and through the gateway; the curl loop and Locust on the NodePort."""
    import importlib.util

    has_wrk, has_curl = shutil.which("wrk") is not None, shutil.which("curl") is not None
    has_locust = importlib.util.find_spec("locust") is not None
    rows: list[tuple[str, str, float | None, str]] = []
    for where, (url, headers) in endpoints.items():
        engine(url, headers, 500)  # warm both servers' code paths
        wrk_runs, engine_runs = [], []
        for _ in range(options.rounds):
            if has_wrk:
                wrk_runs.append(wrk(url, headers, options.seconds, folder))
            engine_runs.append(engine(url, headers, options.requests))
        baseline = statistics.median(wrk_runs) if wrk_runs else None
        rows.append((where, "wrk -t2 -c4", baseline, "" if has_wrk else "skipped: wrk not installed"))
        rows.append((where, f"kfdex load --concurrency 4 --requests {options.requests}", statistics.median(engine_runs), ""))
        if where != "NodePort":
            continue
        if has_curl:
            rows.append((where, f"curl per request ({options.curl} calls)", curl_loop(url, headers, options.curl, folder), ""))
        else:
            rows.append((where, "curl per request", None, "skipped: curl not installed"))
        if has_locust:
            rows.append((where, "kfdex locust --workers 2 --users 4", locust(url, headers, options.seconds), ""))
        else:
            rows.append((where, "kfdex locust --workers 2", None, "skipped: pip install '.[load]'"))
    return rows


def print_throughput(rows: list[tuple[str, str, float | None, str]], rounds: int) -> None:
    print(f"\nthroughput: {rounds} rounds, median req/s; ratio against wrk on the same endpoint\n")
    print("| endpoint | client | req/s | / wrk | note |")
    print("|---|---|---:|---:|---|")
    baselines = {where: rate for where, client, rate, _ in rows if client.startswith("wrk")}
    for where, client, rate, note in rows:
        base = baselines.get(where)
        ratio = f"{rate / base:.0%}" if rate and base else "–"
        print(f"| {where} | {client} | {f'{rate:.0f}' if rate else '–'} | {ratio} | {note} |")
    engine_rate = next((rate for where, client, rate, _ in rows if where == "NodePort" and client.startswith("kfdex load")), None)
    curl_rate = next((rate for where, client, rate, _ in rows if client.startswith("curl") and rate), None)
    if engine_rate and curl_rate:
        print(f"\nkfdex load / curl loop on the NodePort: {engine_rate / curl_rate:.1f}×")


def library_calls(sandbox: control.Sandbox, folder: Path, calls: int = 1000, chunks: int = 5) -> tuple[float, float]:
    """Seconds for ``calls`` ``Kubeflow.infer`` calls in one process, and for the same calls on a plain ``requests.Session``.

    Both go through the gateway with the session cookie (the route ``infer`` picks after a login),
    in alternating chunks so that a busy neighbour hurts both alike.
    """
    from scripts.api import Kubeflow
    from scripts.core.environment import Environment

    settings = {key: value for key, value in sandbox.settings().items() if key != "SANDBOX_DIR"}
    quiet = Environment(sys.stdout, open(os.devnull, "w"), variables={})  # noqa: SIM115 - for the process's life
    kubeflow = Kubeflow.from_env(folder / "library.env", environment=quiet, **settings).login()
    kubeflow.infer("iris")  # resolves the route, opens the connection
    state = kubeflow.state
    plain = requests.Session()
    url = f"{kubeflow.ingress}{PATH}"
    headers = {"Cookie": state.value("AUTH_COOKIE"), "Host": state.value("MODEL_HOST"), "Content-Type": "application/json"}
    plain.post(url, data=BODY, headers=headers, timeout=30).raise_for_status()
    ours = theirs = 0.0
    for _ in range(chunks):
        started = time.perf_counter()
        for _ in range(calls // chunks):
            plain.post(url, data=BODY, headers=headers, timeout=30).json()
        theirs += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(calls // chunks):
            kubeflow.infer("iris")
        ours += time.perf_counter() - started
    return theirs, ours


def print_timed(timed: list[tuple[str, str, float, str, float]], runs: int) -> None:
    print(f"\nwhole processes, median of {runs} runs; ratio kfdex / baseline\n")
    print("| what | baseline | ms | kfdex | ms | ratio |")
    print("|---|---|---:|---|---:|---:|")
    for what, baseline, base_seconds, ours, our_seconds in timed:
        print(
            f"| {what} | {baseline} | {base_seconds * 1000:.0f} | {ours} | {our_seconds * 1000:.0f} | {our_seconds / base_seconds:.2f}× |"
        )


def fixed_rate_capacity(fast: clients.Clients, measured: list[tuple[str, dict[int, float] | None, str]] | None) -> float:
    """The rate both clients can hold on an endpoint: the lowest closed-loop best of wrk, kfdex load and vegeta."""
    if measured:
        bests = [
            max(rates.values())
            for name, rates, _ in measured
            if rates and not name.startswith(("hey", "kfdex locust", "kfdex load --"))
        ]
        return min(bests)
    return min(fast.wrk(8) if shutil.which("wrk") else float("inf"), fast.kfdex_load(8))


@dataclass
class Results:
    """What one bench run measured, section by section (empty when not run)."""

    throughput: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    capacity: list[tuple[str, dict[int, float] | None, str]] | None = None
    rates: list[tuple[str, float, list[tuple[float, str, tuple[float, float, float] | None, str]]]] = field(default_factory=list)
    timed: list[tuple[str, str, float, str, float]] = field(default_factory=list)


def sandbox_endpoints(sandbox: control.Sandbox) -> dict[str, tuple[str, dict[str, str]]]:
    token, node_port = token_and_node_port(sandbox)
    credential = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    routed = {**credential, "Host": f"{MODEL_NAME}.{MODEL_NAMESPACE}.example.com"}  # Istio routes the model by Host
    return {
        "NodePort": (f"http://127.0.0.1:{node_port}{PATH}", credential),
        "gateway": (f"http://127.0.0.1:{sandbox.gateway_port}{PATH}", routed),
    }


def client_sections(
    results: Results,
    sections: set[str],
    options: argparse.Namespace,
    folder: Path,
    endpoints: dict[str, tuple[str, dict[str, str]]],
) -> None:
    """Capacity on nginx, and fixed rate beside vegeta on the NodePort and nginx."""
    with clients.nginx(folder, PATH, BODY) as fast_endpoint:
        fast = clients.Clients(fast_endpoint, folder, options.client_seconds)
        if "capacity" in sections:
            results.capacity = clients.capacity_rows(fast, options.rounds)
        if "rate" in sections:
            top = fixed_rate_capacity(fast, results.capacity)
            results.rates.append(("nginx", top, clients.rate_rows(fast, top)))
    if "rate" in sections:
        url, headers = endpoints["NodePort"]
        model = clients.Clients(clients.Endpoint("NodePort", url, headers, BODY), folder, options.client_seconds)
        top = fixed_rate_capacity(model, None)
        results.rates.insert(0, ("NodePort", top, clients.rate_rows(model, top)))


def measure(sections: set[str], options: argparse.Namespace) -> Results:
    results = Results()
    # the sandbox ends with this process however it ends (its watchdog sees a SIGKILL too)
    wanted = sections & {"throughput", "rate", "login"}
    sandbox = control.start("kf191", ends_with=(os.getpid(), None)) if wanted else None
    try:
        with tempfile.TemporaryDirectory(prefix="kfdex-bench-") as temporary:
            folder = Path(temporary)
            endpoints = sandbox_endpoints(sandbox) if sandbox is not None else {}
            if "throughput" in sections:
                results.throughput = throughput_rows(endpoints, options, folder)
            if sections & {"capacity", "rate"}:
                client_sections(results, sections, options, folder, endpoints)
            if sandbox is not None and "login" in sections:
                results.timed = login_and_startup(sandbox, options.runs, folder)
                plain_calls, library = library_calls(sandbox, folder)
                results.timed.append(("1,000 calls in one process", "requests.Session with the cookie", plain_calls, "Kubeflow.infer", library))
    finally:
        if sandbox is not None:
            control.stop(sandbox.folder, sandbox.id)
    return results


def print_results(results: Results, options: argparse.Namespace) -> None:
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {options.load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    if results.throughput:
        print_throughput(results.throughput, options.rounds)
    if results.capacity:
        clients.print_capacity(results.capacity, options.rounds, options.client_seconds)
    for endpoint, top, _ in results.rates:
        print(
            f"\n{endpoint}: closed-loop capacity {top:.0f} req/s (the lowest best of wrk, kfdex load, vegeta); rates at 50 % and 80 %"
        )
    if results.rates:
        clients.print_rates(results.rates, options.client_seconds)
    if results.timed:
        print_timed(results.timed, options.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of wrk and the engine (median reported)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per engine round")
    parser.add_argument("--seconds", type=int, default=8, help="length of a wrk or Locust round")
    parser.add_argument("--client-seconds", type=int, default=5, help="length of each capacity or fixed-rate run")
    parser.add_argument("--curl", type=int, default=300, help="requests in the curl loop")
    parser.add_argument("--runs", type=int, default=9, help="runs of each whole-process timing (median reported)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run, of {','.join(SECTIONS)}")
    options = parser.parse_args()
    sections = set(options.sections.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"--sections: give some of {','.join(SECTIONS)}")
    options.load_before = os.getloadavg()[0]  # a busy machine slows every client: said beside the figures
    try:
        with signals_as_interrupts():  # SIGTERM and SIGHUP as Ctrl-C: the sandbox and the temporary folder go
            results = measure(sections, options)
    except KeyboardInterrupt as interrupt:
        sys.exit(f"bench: interrupted ({interrupt}); the sandbox and temporary files are gone")
    print_results(results, options)


if __name__ == "__main__":
    main()
