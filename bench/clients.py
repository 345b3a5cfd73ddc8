"""Benchmark of load clients: capacity against a fast endpoint, and fixed-rate accuracy beside vegeta.

``bench/run.py --sections capacity,rate`` uses this module.

- The fast endpoint: nginx from Debian's packages, configured here on
  127.0.0.1 (a free port, one worker pinned to core 0) to check the session
  cookie (a 302 to ``/dex/auth`` without it) and answer a canned V2 response.
  It answers in microseconds, so a client's own cost per request decides its
  rate.
- Capacity: wrk, hey, vegeta, ``kfdex load`` and ``kfdex locust --workers 1``,
  each pinned to core 1 (taskset; the in-process engine and Locust's
  processes by the bench's own CPU affinity), each at concurrency 4, 8 and
  16, rounds interleaved so that a busy neighbour hurts all alike; the median
  per concurrency, and the best of the three.
- Fixed rate: ``kfdex load --rate R`` beside ``vegeta attack -rate R`` at 50 %
  and 80 % of the endpoint's closed-loop capacity, each with at most 16
  requests in flight: achieved rate, p50 and p99, and kfdex's send lag (how
  long after their due time its sends left: kfdex counts latency from the due
  time, vegeta from the actual send).

vegeta (``github.com/tsenart/vegeta/v12``) is built into ~/.cache when Go is
present; a missing tool's row is skipped with a note.  Traffic goes to
127.0.0.1 only, every run bounded in time; every process started is stopped
by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
CACHE = Path.home() / ".cache" / "kfdex-bench"
SERVER_CORE, CLIENT_CORE = "0", "1"
CONCURRENCIES = (4, 8, 16)
RATE_CONNECTIONS = 16  # at a fixed rate, the most requests in flight for either client
ANSWER = '{"model_name":"sklearn-irisv2","model_version":"v1","id":"1","outputs":[{"name":"predict","shape":[1,1],"datatype":"INT64","data":[1]}]}'


@dataclass(frozen=True)
class Endpoint:
    """Where a client sends the iris V2 call, with which headers (credential included) and body."""

    name: str
    url: str
    headers: dict[str, str]
    body: bytes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, deadline_s: float = 10.0) -> None:
    ends = time.monotonic() + deadline_s
    while time.monotonic() < ends:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, by pid; always reaped."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sent)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    process.wait()


@contextlib.contextmanager
def nginx(folder: Path, path: str, body: bytes) -> Iterator[Endpoint]:
    """nginx on 127.0.0.1 (one worker on core 0): the cookie checked, a canned V2 answer; stopped by pid on the way out."""
    port, cookie = free_port(), secrets.token_urlsafe(24)
    home = folder / "nginx"
    home.mkdir()
    temp = " ".join(f"{kind}_temp_path {home / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = home / "nginx.conf"
    config.write_text(
        f"""worker_processes 1;
daemon off;
pid {home / "nginx.pid"};
error_log {home / "error.log"} warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 10000; }}
http {{
  access_log off;
  {temp}
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port};
    location = {path} {{
      if ($cookie_authservice_session != "{cookie}") {{ return 302 /dex/auth; }}
      default_type application/json;
      return 200 '{ANSWER}';
    }}
  }}
}}
"""
    )
    config.chmod(0o600)
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, "nginx", "-c", str(config), "-e", str(home / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        headers = {"Content-Type": "application/json", "Cookie": f"authservice_session={cookie}"}
        yield Endpoint("nginx", f"http://127.0.0.1:{port}{path}", headers, body)
    finally:
        stop(process)


def vegeta_binary() -> str | None:
    """vegeta, built once into ~/.cache by Go (never into the repository); None without Go."""
    built = CACHE / "bin" / "vegeta"
    if built.exists():
        return str(built)
    if shutil.which("go") is None:
        return None
    variables = dict(os.environ, GOBIN=str(CACHE / "bin"), GOPATH=str(CACHE / "gopath"), GOFLAGS="-modcacherw")
    subprocess.run(["go", "install", VEGETA_MODULE], check=True, env=variables, capture_output=True, timeout=900)
    return str(built)


class Clients:
    """Each client's one measurement: a closed loop at concurrency C, or a fixed rate R, for ``seconds``."""

    def __init__(self, endpoint: Endpoint, folder: Path, seconds: int) -> None:
        self.endpoint, self.seconds = endpoint, seconds
        self.folder = folder / endpoint.name
        self.folder.mkdir(exist_ok=True)
        self.body = self.folder / "body.json"
        self.body.write_bytes(endpoint.body)
        self.vegeta = vegeta_binary()

    def _private(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        path.chmod(0o600)  # holds the credential: files, never argv
        return path

    def _pinned(self, command: list[str], **more: object) -> str:
        return subprocess.run(["taskset", "-c", CLIENT_CORE, *command], capture_output=True, text=True, check=True, **more).stdout  # type: ignore[call-overload]

    def wrk(self, concurrency: int) -> float:
        lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(self.endpoint.body.decode())}"]
        lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in self.endpoint.headers.items()]
        script = self._private("post.lua", "\n".join(lines) + "\n")
        out = self._pinned(["wrk", "-t1", f"-c{concurrency}", f"-d{self.seconds}s", "-s", str(script), self.endpoint.url])
        if "Non-2xx" in out:
            raise SystemExit(f"wrk saw errors:\n{out}")
        return float(next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1])

    def hey(self, concurrency: int) -> float:
        # hey takes headers in argv only: the bench's nginx cookie is a throwaway made here, so hey runs on nginx only
        headers = [
            part for name, value in self.endpoint.headers.items() if name != "Content-Type" for part in ("-H", f"{name}: {value}")
        ]
        out = self._pinned(
            [
                "hey",
                "-z",
                f"{self.seconds}s",
                "-c",
                str(concurrency),
                "-m",
                "POST",
                "-T",
                "application/json",
                *headers,
                "-D",
                str(self.body),
                self.endpoint.url,
            ]
        )
        statuses = out.partition("Status code distribution:")[2].partition("Error distribution:")[0]  # not the histogram's counts
        if "[200]" not in statuses or any(f"[{code}]" in statuses for code in ("302", "401", "403", "500", "502", "503")):
            raise SystemExit(f"hey saw errors:\n{out}")
        return float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[1])

    def _vegeta(self, arguments: list[str]) -> tuple[dict[str, Any], str]:
        """vegeta's JSON report of one attack, and a note naming any answer that was not a 200."""
        assert self.vegeta is not None
        lines = [
            f"POST {self.endpoint.url}",
            *(f"{name}: {value}" for name, value in self.endpoint.headers.items()),
            f"@{self.body}",
        ]
        targets = self._private("targets.txt", "\n".join(lines) + "\n")
        attack = subprocess.Popen(
            [
                "taskset",
                "-c",
                CLIENT_CORE,
                self.vegeta,
                "attack",
                "-targets",
                str(targets),
                "-duration",
                f"{self.seconds}s",
                *arguments,
            ],
            stdout=subprocess.PIPE,
        )
        try:
            report = subprocess.run(
                [self.vegeta, "report", "-type", "json"], stdin=attack.stdout, capture_output=True, check=True
            ).stdout
        finally:
            stop(attack)
        figures = json.loads(report)
        codes = {code: count for code, count in (figures.get("status_codes") or {}).items() if code != "200"}
        return figures, f"vegeta saw errors {codes}" if codes else ""

    def vegeta_capacity(self, concurrency: int) -> float:
        figures, note = self._vegeta(["-rate", "0", "-workers", str(concurrency), "-max-workers", str(concurrency)])
        if note:
            raise SystemExit(note)
        return float(figures["throughput"])

    def vegeta_rate(self, rate: float, connections: int = RATE_CONNECTIONS) -> tuple[tuple[float, float, float], str]:
        # at most as many requests in flight as kfdex's connections: unbounded, vegeta on one core starts a worker per
        # late send and collapses (10,000 req/s offered: 740 achieved, p50 1.6 s)
        figures, note = self._vegeta(["-rate", f"{round(rate)}/s", "-max-workers", str(connections)])
        latencies = figures["latencies"]
        return (float(figures["rate"]), latencies["50th"] / 1e6, latencies["99th"] / 1e6), note

    def _target(self) -> object:
        from scripts.load.engine import LoadTarget

        return LoadTarget(self.endpoint.url, "POST", self.endpoint.headers, self.endpoint.body)

    def kfdex_load(self, concurrency: int, client: str = "auto") -> float:
        from scripts.load.engine import run_load

        with on_client_core():
            report = run_load(self._target(), concurrency=concurrency, duration=self.seconds, client=client)  # type: ignore[arg-type]
        if report.errors:
            raise SystemExit(f"kfdex load saw errors: {report.errors}")
        return report.requests / report.duration_s

    def bare_pycurl(self, concurrency: int) -> float:
        """The ceiling of a Python client on libcurl: the same POST over ``concurrency`` connections, with nothing
        kfdex keeps (no latency, no statuses, no checks), answers read and thrown away."""
        import pycurl

        headers = [f"{name}: {value}" for name, value in self.endpoint.headers.items()] + ["Content-Type: application/json"]
        multi, done, handles, answered, sampled_at = pycurl.CurlMulti(), 0, [], set(), 0
        for _ in range(concurrency):
            handle = pycurl.Curl()
            handles.append(handle)
            handle.setopt(pycurl.URL, self.endpoint.url)
            handle.setopt(pycurl.POSTFIELDS, self.endpoint.body)
            handle.setopt(pycurl.HTTPHEADER, headers)
            handle.setopt(pycurl.WRITEFUNCTION, len)
            multi.add_handle(handle)
        with on_client_core():
            started = time.perf_counter()
            ends = started + self.seconds
            while time.perf_counter() < ends:
                multi.select(0.01)
                while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                _queued, finished, failed = multi.info_read()
                if finished and done >= sampled_at:  # one batch's statuses in about every thousand answers
                    answered |= {handle.getinfo(pycurl.RESPONSE_CODE) for handle in finished}
                    sampled_at = done + 1000
                for handle in finished:
                    multi.remove_handle(handle)
                    multi.add_handle(handle)
                done += len(finished)
                if failed:
                    raise SystemExit(f"the bare pycurl loop saw errors: {failed[0][2]}")
            elapsed = time.perf_counter() - started
        for handle in handles:
            multi.remove_handle(handle)
            handle.close()
        multi.close()
        if answered != {200}:
            raise SystemExit(f"the bare pycurl loop saw statuses {sorted(answered)}")
        return done / elapsed

    def kfdex_rate(self, rate: float, connections: int = RATE_CONNECTIONS) -> tuple[tuple[float, float, float], str]:
        from scripts.load.rate import run_rate
        from scripts.load.report import summary

        with on_client_core():
            report = run_rate(self._target(), rate=rate, duration=self.seconds, connections=connections)  # type: ignore[arg-type]
        figures = summary(report)
        kept = figures["rate"]
        lag = kept["send_lag_ms"]
        note = f"late {kept['late']}, skipped {kept['skipped']}, send lag p50 {lag['p50']:.3f} p99 {lag['p99']:.3f}"
        note += f", errors {report.errors}" if report.errors else ""
        return (kept["achieved"], figures["latency_ms"]["p50"], figures["latency_ms"]["p99"]), note

    def kfdex_locust(self, concurrency: int) -> float:
        from scripts.load.locust_run import run_local

        with on_client_core():  # Locust's master and worker inherit the affinity
            report = run_local(
                self._target(), workers=1, users=concurrency, spawn_rate=concurrency * 10, run_time=f"{self.seconds}s"
            )  # type: ignore[arg-type]
        if report.errors:
            raise SystemExit(f"kfdex locust saw errors: {report.errors}")
        return report.requests / report.duration_s


@contextlib.contextmanager
def on_client_core() -> Iterator[None]:
    """This process (and what it starts) on the client's core for the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def capacity_rows(clients: Clients, rounds: int) -> list[tuple[str, dict[int, float] | None, str]]:
    """(client, median req/s by concurrency or None, note): the rounds interleaved across clients and concurrencies."""
    tools: dict[str, tuple[Callable[[int], float] | None, str]] = {
        "wrk -t1": (clients.wrk if shutil.which("wrk") else None, "skipped: apt-get install wrk"),
        "hey": (clients.hey if shutil.which("hey") else None, "skipped: apt-get install hey"),
        "vegeta attack -rate 0": (clients.vegeta_capacity if clients.vegeta else None, "skipped: no Go to build vegeta"),
        "bare pycurl multi loop (ceiling)": (clients.bare_pycurl if _has("pycurl") else None, "skipped: pip install pycurl"),
        "kfdex load": (clients.kfdex_load if _has("pycurl") else None, "skipped: pip install '.[load]' (pycurl)"),
        "kfdex load --client http.client": (lambda concurrency: clients.kfdex_load(concurrency, "http.client"), ""),
        "kfdex locust --workers 1": (clients.kfdex_locust if _has("locust") else None, "skipped: pip install '.[load]'"),
    }
    samples: dict[str, dict[int, list[float]]] = {name: {c: [] for c in CONCURRENCIES} for name in tools}
    for _ in range(rounds):
        for name, (measure, _note) in tools.items():
            if measure is not None:
                for concurrency in CONCURRENCIES:
                    samples[name][concurrency].append(measure(concurrency))
    return [
        (name, {c: statistics.median(taken) for c, taken in samples[name].items()} if measure else None, "" if measure else note)
        for name, (measure, note) in tools.items()
    ]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def rate_rows(clients: Clients, capacity: float) -> list[tuple[float, str, tuple[float, float, float] | None, str]]:
    """(rate, client, (achieved, p50 ms, p99 ms) or None, note) at 50 % and 80 % of ``capacity``, the two clients in turn."""
    rows: list[tuple[float, str, tuple[float, float, float] | None, str]] = []
    for share in (0.5, 0.8):
        rate = float(max(10, round(capacity * share, -1)))
        rows.append((rate, f"kfdex load --rate --concurrency {RATE_CONNECTIONS}", *clients.kfdex_rate(rate)))
        if clients.vegeta:
            rows.append((rate, f"vegeta attack -rate -max-workers {RATE_CONNECTIONS}", *clients.vegeta_rate(rate)))
        else:
            rows.append((rate, f"vegeta attack -rate -max-workers {RATE_CONNECTIONS}", None, "skipped: no Go to build vegeta"))
    return rows


def print_capacity(rows: list[tuple[str, dict[int, float] | None, str]], rounds: int, seconds: int) -> None:
    print(
        f"\nclient capacity on nginx (1 worker on core {SERVER_CORE}), each client pinned to core {CLIENT_CORE}, {seconds} s runs;"
    )
    print(f"median of {rounds} rounds per concurrency, the best concurrency shown; ratio against wrk\n")
    print("| client | best c | req/s | / wrk | c=4 | c=8 | c=16 | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    best = {name: max(rates.values()) for name, rates, _ in rows if rates}
    wrk = best.get("wrk -t1")
    for name, rates, note in rows:
        if not rates:
            print(f"| {name} | – | – | – | – | – | – | {note} |")
            continue
        top = max(rates, key=lambda c: rates[c])
        ratio = f"{rates[top] / wrk:.0%}" if wrk else "–"
        cells = " | ".join(f"{rates[c]:.0f}" for c in CONCURRENCIES)
        print(f"| {name} | {top} | {rates[top]:.0f} | {ratio} | {cells} | {note} |")
    load, locust = best.get("kfdex load"), best.get("kfdex locust --workers 1")
    if load and locust:
        print(f"\nkfdex load / kfdex locust --workers 1: {load / locust:.1f}×")


def print_rates(
    rows: list[tuple[str, float, list[tuple[float, str, tuple[float, float, float] | None, str]]]], seconds: int
) -> None:
    print(f"\nfixed rate, {seconds} s per run, clients on core {CLIENT_CORE}: achieved req/s, p50 and p99 (ms)\n")
    print("| endpoint | rate | client | achieved | p50 | p99 | note |")
    print("|---|---:|---|---:|---:|---:|---|")
    for endpoint, _capacity, measured in rows:
        for rate, client, figures, note in measured:
            if figures is None:
                print(f"| {endpoint} | {rate:.0f} | {client} | – | – | – | {note} |")
            else:
                achieved, p50, p99 = figures
                print(f"| {endpoint} | {rate:.0f} | {client} | {achieved:.1f} | {p50:.2f} | {p99:.2f} | {note} |")
