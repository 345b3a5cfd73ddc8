"""``load`` and ``locust``: the model under load through the auth path, with the session infer would send.

Both build the request exactly as ``infer`` does (``infer.prepare``: payload,
route, credential bound to its ingress) and report the same figures: a table
on stdout, or one JSON object with ``--json``.  Nothing is retried: every
failure is counted.  A session the gateway stops accepting ends the run with
the partial report and exit 5.  ``load`` runs in this process (the engine in
``scripts/load``); ``locust`` runs Locust's master and workers as processes
(the ``load`` extra).  A Locust worker on another machine needs no .env: the
master hands it the request, credential included, over Locust's own channel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.environment import Environment
from ..core.errors import ConfigError, GatewayError, ModelError, SessionError, UsageError
from ..core.state import EnvFile, State
from ..core.step import AUTH, PAYLOAD, PROTOCOLS, ROUTES, Command, Option
from ..core.values import (
    COUNT,
    LATENCY_MS,
    LOAD_RATE,
    MAX_PARALLEL,
    OR_NONE,
    PARALLEL,
    PORT,
    RATE,
    TIMEOUT,
    Number,
    is_host,
    shown,
    timespan,
)

if TYPE_CHECKING:
    from ..infer import ModelCall
    from ..load.engine import LoadReport, LoadTarget, Sender
    from ..load.renewal import Renewal

VIA = Option("via", "nodeport or ingress (default: the NodePort when NODE_PORT is set, else the ingress with MODEL_HOST)", choices=ROUTES)
JSON = Option("json", "print the summary as one JSON object on stdout", kind=bool, default=False, short="j")
MAX_ERRORS = Option(
    "max_errors",
    "failed requests the run may have and still exit 0: a number (10) or a percentage of the requests (2.5%); default 0",
)
DEFAULT_REQUESTS = 1000
RENEW = Option(
    "renew",
    "when the session ends mid-run, log in again (DEX_PASSWORD, or a new token after a token login) and resend; "
    "the report counts the renewals",
    kind=bool,
    default=False,
)
RENEW_AHEAD = Option(
    "renew",
    "log in again a while before the session ends (DEX_PASSWORD, or a new token after a token login) and hand the new "
    "credential to the workers through the master; the report counts the renewals",
    kind=bool,
    default=False,
)


def _target(env_file: EnvFile, environment: Environment, payload: str, auth: str, via: str | None) -> LoadTarget:
    from ..infer import prepare

    return _target_of(prepare(env_file.read(), environment, payload, auth, via))


def _target_of(call: ModelCall) -> LoadTarget:
    from ..load.engine import LoadTarget

    return LoadTarget(
        call.url,
        "POST",
        call.headers,
        json.dumps(call.payload.body).encode(),
        timeout=call.settings.read_timeout,
        verify=call.settings.verify,
    )


@dataclass(frozen=True)
class Tolerance:
    """How many failed requests a run may have and still pass (``--max-errors N`` or ``P%``; none by default)."""

    limit: float = 0
    percent: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Tolerance:
        """``--max-errors``: a whole number of requests, or a percentage of them (``2.5%``); a UsageError otherwise."""
        if text is None:
            return cls()
        percent = text.strip().endswith("%")
        wanted = Number(float, minimum=0, maximum=100) if percent else OR_NONE
        try:
            return cls(wanted.parse(text.strip().removesuffix("%"), "--max-errors"), percent)
        except UsageError:
            raise UsageError(f"--max-errors {shown(text)}: give a number of requests (10) or a percentage of them (2.5%)") from None

    def allows(self, failed: int, requests: int) -> bool:
        """True when ``failed`` of ``requests`` is within the tolerance."""
        return failed <= (self.limit * requests / 100 if self.percent else self.limit)

    def __str__(self) -> str:
        return f"{self.limit:g}%" if self.percent else f"{self.limit:g}"


# how each file a run writes begins, when kfdex (or Locust for it) wrote it: only such a file is ever written over
_REPORT_STARTS = {
    "--html": (b"<meta name='generator' content='kfdex'>", b"<title>Locust</title>"),  # anywhere in the first 4 KB
    "--csv": (b"Type,Name,Request Count", b"Method,Name,Error", b"Count,Message,Traceback", b"Timestamp,User Count"),
}
_LOCUST_CSV = ("_stats.csv", "_failures.csv", "_exceptions.csv", "_stats_history.csv")  # Locust's files for --csv PREFIX


def _check_folders(*given: tuple[str, str | None]) -> None:
    """A report written at the end of a run goes to a folder that exists, and never over a file that is not a report:
    checked before the run, not after it."""
    for flag, path in given:
        if path is None:
            continue
        target = Path(path).expanduser()
        if not path or path.endswith("/") or target.is_dir():
            raise UsageError(f"{flag} {shown(path)} is not a file name: give one (its folder must exist)")
        if not target.parent.is_dir():
            raise UsageError(f"{flag} {shown(path)}: its folder does not exist; create it or give another path")
        written = [Path(f"{target}{suffix}") for suffix in _LOCUST_CSV] if flag == "--csv" else [target]
        for file in written:
            if (file.exists() or file.is_symlink()) and not _a_report(flag, file):
                raise UsageError(
                    f"{flag} {shown(path)}: {file} exists and is not a report kfdex wrote: name another file, "
                    "or move that one away"
                )


def _a_report(flag: str, file: Path) -> bool:
    """Whether ``file`` is a regular file a run of kfdex (or Locust for it) wrote, judged by how it begins."""
    try:
        if not file.is_file() or file.is_symlink():
            return False
        with file.open("rb") as opened:
            head = opened.read(4096)
    except OSError:
        return False
    if flag == "--csv":
        return head.startswith(_REPORT_STARTS["--csv"])
    return any(mark in head for mark in _REPORT_STARTS["--html"])


def _senders(
    env_file: EnvFile, environment: Environment, payload: str, auth: str, via: str | None, protocol: str
) -> tuple[LoadTarget | None, Callable[[], Sender] | None, dict[str, str]]:
    """What ``load`` sends (an HTTP target as infer's request, or gRPC senders when ``--protocol grpc`` asks) and, for
    the HTML report's header, what that is: route, model and kind of credential (never its value)."""
    from ..infer import prepare
    from ..model.routing import grpc_asked

    state = env_file.read()
    if grpc_asked(protocol):  # grpc loads only when asked for
        from ..model.grpcv2 import load_senders

        about = {"route": f"gRPC ModelInfer (V2), --via {via or 'as infer chooses'}", "model": state.get("MODEL_NAME", "")}
        return None, load_senders(state, environment, payload, auth, via), {**about, "credential": f"--auth {auth}"}
    call = prepare(state, environment, payload, auth, via)
    about = {"route": f"POST {call.url} (via {call.via})", "model": call.model, "credential": call.credential.noun}
    return _target_of(call), None, about


def renewal(
    env_file: EnvFile, environment: Environment, overrides: Mapping[str, str], payload: str, auth: str, via: str | None
) -> tuple[Renewal, Callable[[], float | None]]:
    """``--renew``: the run's target and how to renew it, through the library's login (``scripts.api``), and the seconds left."""
    from ..api import Kubeflow
    from ..infer import prepare
    from ..load.renewal import Renewal

    kubeflow = Kubeflow.for_command(env_file, environment, overrides)
    if not kubeflow.can_renew():  # found now, before the run, not when the session ends in the middle of it
        raise ConfigError(
            "--renew needs DEX_LOGIN and DEX_PASSWORD (in the .env or the environment) or a token login (`invoke login "
            "--token`): set them, or leave out --renew"
        )

    def target(state: State) -> LoadTarget:
        return _target_of(prepare(state, environment, payload, auth, via))

    def renewed() -> LoadTarget:
        kubeflow.renew()
        return target(kubeflow.state)

    return Renewal(kubeflow.with_renewal(target), renewed), kubeflow.remaining  # a session already over is renewed first


def _renewing(
    env_file: EnvFile, environment: Environment, overrides: Mapping[str, str], payload: str, auth: str, via: str | None
) -> tuple[Renewal, LoadTarget, Callable[[], Sender]]:
    """``load --renew``: the run's renewal, its first target, and senders that renew and resend (the thread engine's)."""
    from ..load.engine import HttpSender
    from ..load.renewal import RenewingSender

    renewing, _remaining = renewal(env_file, environment, overrides, payload, auth, via)
    return renewing, renewing.target, partial(RenewingSender, renewing, HttpSender)


def _finish_renewal(report: LoadReport, renewing: Renewal | None) -> None:
    """``--renew``: the report counts the renewals, and says why one failed."""
    if renewing is not None:
        report.renewals = renewing.renewals
        if renewing.failure:
            report.note = f"{report.note}; renewing it failed: {renewing.failure}"


def _check_renew(protocol: str, client: str, fixed: bool) -> None:
    """``--renew`` is for the closed loop over REST, on the thread engine: a UsageError otherwise, before anything is sent."""
    if protocol != "rest":
        raise UsageError("--renew works with REST load: leave out --protocol grpc")
    if fixed:
        raise UsageError("--renew works with the closed loop: leave out --rate, --sweep and --slo-p99")
    if client == "curl":
        raise UsageError("--renew resends on the thread engine: leave out --client curl")


@dataclass(frozen=True)
class OpenLoad:
    """What ``load --rate`` and ``load --sweep`` share: what is sent, over how many connections, and how it is shown."""

    payload: str
    auth: str
    via: str | None
    protocol: str
    rate: float | None
    duration: float | None
    connections: int
    warmup: int
    requests: int | None
    client: str
    as_json: bool
    html: str | None
    tolerance: Tolerance

    def senders(self, env_file: EnvFile, environment: Environment) -> tuple[LoadTarget | None, Callable[[], Sender] | None, dict[str, str]]:
        return _senders(env_file, environment, self.payload, self.auth, self.via, self.protocol)

    @property
    def shape(self) -> dict[str, object]:
        """The fixed-rate engine's arguments other than the rate."""
        return {"duration": self.duration, "connections": self.connections, "warmup": self.warmup, "client": self.client}


def fixed_rate(env_file: EnvFile, environment: Environment, run: OpenLoad) -> None:
    """``load --rate R --duration S``: R requests a second, each due at its time whatever the ones before did."""
    from ..load.rate import check_rate, run_rate

    if run.rate is None:
        raise UsageError("--slo-p99 goes with --sweep: give --sweep START:STOP:STEP (or --rate R without an SLO)")
    if run.requests is not None:
        raise UsageError("--rate runs for --duration S: leave out --requests")
    check_rate(run.rate, run.duration, run.connections, run.warmup)  # bad input sends nothing, not even a login check
    from ..load.progress import live_progress

    target, senders, about = run.senders(env_file, environment)
    with live_progress(stream=environment.stderr) as progress:
        report = run_rate(target, rate=run.rate, **run.shape, progress=progress, senders=senders)  # type: ignore[arg-type]
    fixed = {**about, "load": f"fixed rate: {run.rate:g} req/s over {run.connections} connections"}
    _report(environment, report, run.as_json, run.html, run.tolerance, fixed)


def sweep_rates(env_file: EnvFile, environment: Environment, run: OpenLoad, spec: str, slo_p99: float | None) -> None:
    """``load --sweep``: one fixed-rate run per rate, the table of rate against percentiles, and the knee."""
    from ..load import sweep as sweeping

    if run.rate is not None or run.requests is not None:
        raise UsageError("--sweep gives the rates and runs each for --duration S: leave out --rate and --requests")
    wanted = sweeping.rates(spec)
    sweeping.check_sweep(wanted, run.duration, run.connections, run.warmup, slo_p99)  # bad input sends nothing
    from ..load.progress import live_progress

    target, senders, about = run.senders(env_file, environment)
    about["load"] = f"sweep {spec} req/s over {run.connections} connections" + (f", SLO p99 {slo_p99:g} ms" if slo_p99 else "")

    def said(step: sweeping.Step) -> None:
        environment.info(f"{step.rate:g} req/s: p50 {step.p50_ms:g} ms, p99 {step.p99_ms:g} ms, errors {step.failed}")

    with live_progress(stream=environment.stderr) as progress:
        runner = sweeping.rate_runner(target, **run.shape, progress=progress, senders=senders)  # type: ignore[arg-type]
        result = sweeping.run_sweep(wanted, slo_p99, runner, said)
    environment.data(json.dumps(sweeping.summary(result)) if run.as_json else sweeping.table(result))
    if run.html:
        from ..load.page import write_sweep

        _written(environment, run.html, lambda path: write_sweep(result, path, about))
    if result.last is not None:
        _ended(result.last)
    if result.steps:  # higher rates may fail (that is what a sweep looks for), its lowest may not
        _judged(result.steps[0].report, run.tolerance, f" at the sweep's lowest rate, {result.steps[0].rate:g} req/s")


def _written(environment: Environment, html: str, write: Callable[[Path], Path]) -> None:
    """Write the HTML report; a path that cannot be written is bad input, said after the figures."""
    try:
        written = write(Path(html))
    except OSError as error:
        raise UsageError(f"--html {shown(html)}: cannot write the report ({error.strerror}); the figures are above") from None
    environment.info(f"report written to {written}")


def _ended(report: LoadReport) -> None:
    """End as the run ended: exit 5 when the session was refused (from the start, or mid-run), 130 when interrupted."""
    if report.session_expired:
        from ..load.basics import succeeded

        answered = any(succeeded(status) for status in report.statuses)
        when = "stopped accepting the session during the run" if answered else "refused the session from the first request"
        raise SessionError(f"the gateway {when} ({report.note}): run `invoke login`")
    if report.interrupted:
        raise KeyboardInterrupt


def _report(
    environment: Environment,
    report: LoadReport,
    as_json: bool,
    html: str | None,
    tolerance: Tolerance,
    measured: Mapping[str, str] | None = None,
) -> None:
    """Print the figures, write the HTML report if asked, and end as the run ended: failed requests fail the command."""
    from ..load import report as figures

    environment.data(figures.to_json(report) if as_json else figures.table(report))
    if html:
        from ..load.page import write_load

        _written(environment, html, lambda path: write_load(report, path, measured or {}))
    _ended(report)
    _judged(report, tolerance)


def _judged(report: LoadReport, tolerance: Tolerance, where: str = "") -> None:
    """Exit 9 (after the figures) when no request succeeded, or more failed than ``--max-errors`` allows."""
    if report.requests == 0:
        raise ModelError(f"the run completed no request{where}: nothing was measured (see the figures above)")
    failed = sum(report.errors.values())
    statuses = ", ".join(f"{status} ×{count}" for status, count in report.errors.items())
    if not tolerance.allows(failed, report.requests):
        raise ModelError(
            f"{failed} of {report.requests} requests failed{where} ({statuses}), more than --max-errors {tolerance} allows: "
            "see the figures above"
        )
    if failed == report.requests:  # whatever the tolerance: a run in which nothing succeeded measured no model
        raise ModelError(f"all {failed} requests failed{where} ({statuses}): nothing was measured, whatever --max-errors allows")


def load(
    env_file: EnvFile,
    environment: Environment,
    overrides: Mapping[str, str],
    payload: str = "iris",
    auth: str = "auto",
    via: str | None = None,
    concurrency: int = 4,
    requests: int | None = None,
    duration: float | None = None,
    warmup: int = 0,
    json: bool = False,
    html: str | None = None,
    protocol: str = "rest",
    max_errors: str | None = None,
    rate: float | None = None,
    sweep: str | None = None,
    slo_p99: float | None = None,
    client: str = "auto",
    renew: bool = False,
) -> None:
    """Send the payload ``requests`` times (or for ``duration`` seconds) from ``concurrency`` workers and report."""
    if requests is not None and duration is not None:
        raise UsageError("give --requests or --duration, not both")
    if renew:
        _check_renew(protocol, client, rate is not None or sweep is not None or slo_p99 is not None)
    tolerance = Tolerance.parse(max_errors)
    if html:
        from ..load.report import require_html

        require_html()
    _check_folders(("--html", html))
    from ..load.curlmulti import check_client

    check_client(client)
    if rate is not None or sweep is not None or slo_p99 is not None:
        run = OpenLoad(
            payload, auth, via, protocol, rate, duration, concurrency, warmup, requests, client, json, html, tolerance
        )
        if sweep is None:
            fixed_rate(env_file, environment, run)
        else:
            sweep_rates(env_file, environment, run, sweep, slo_p99)
        return
    from ..load.engine import run_load
    from ..load.progress import live_progress

    # with --renew, a session already over is renewed (and written to the .env) before the run's request is made
    renewing, target, renewed = _renewing(env_file, environment, overrides, payload, auth, via) if renew else (None, None, None)
    target, senders, about = _senders(env_file, environment, payload, auth, via, protocol)
    if renewing is not None:
        target, senders = renewing.target, renewed
    bound = {"duration": duration} if duration is not None else {"requests": requests or DEFAULT_REQUESTS}  # never 0: COUNT
    with live_progress(stream=environment.stderr) as progress:
        report = run_load(target, concurrency=concurrency, warmup=warmup, progress=progress, senders=senders, client=client, **bound)
    _finish_renewal(report, renewing)
    closed = {**about, "load": f"closed loop: {concurrency} workers, each waiting for its answer"}
    _report(environment, report, json, html, tolerance, closed)


def locust(
    env_file: EnvFile,
    environment: Environment,
    overrides: Mapping[str, str],
    payload: str = "iris",
    auth: str = "auto",
    via: str | None = None,
    workers: int = 2,
    users: int = 8,
    spawn_rate: float = 8.0,
    run_time: str = "30s",
    master: bool = False,
    expect_workers: int | None = None,
    worker: bool = False,
    master_host: str | None = None,
    master_port: int | None = None,
    bind_host: str = "127.0.0.1",
    json: bool = False,
    html: str | None = None,
    csv: str | None = None,
    max_errors: str | None = None,
    renew: bool = False,
) -> None:
    """Locust: a local master and workers, or one side of a master/worker pair across machines."""
    from ..load import locust_run

    run_time = f"{timespan(run_time, '--run-time')}s"  # Locust's own parsing would fail only after it started
    tolerance = Tolerance.parse(max_errors)
    _check_folders(("--html", html), ("--csv", csv))
    for flag, address in (("--bind-host", bind_host), ("--master-host", master_host)):
        if address is not None and address != "*" and not is_host(address):
            raise UsageError(f"{flag} {shown(address)}: give a host name or IP address")
    locust_run.require_locust()
    if worker:
        if master or not master_host:
            raise UsageError("--worker needs --master-host HOST (and no --master)")
        if renew:
            raise UsageError("--renew is for the master (or a local run): a worker takes each renewed credential from it")
        port = master_port or locust_run.DEFAULT_MASTER_PORT
        environment.info(f"locust worker: serving the master at {master_host}:{port}")
        if locust_run.run_worker(master_host, port=port) != 0:
            raise GatewayError(f"the Locust worker ended with an error: check that a master runs at {master_host}:{port}")
        return
    renewing, renewed = None, {}
    if renew:
        renewing, remaining = renewal(env_file, environment, overrides, payload, auth, via)
        target, renewed = renewing.target, {"renewal": renewing, "remaining": remaining}
    else:
        target = _target(env_file, environment, payload, auth, via)
    shape = {"users": users, "spawn_rate": spawn_rate, "run_time": run_time, "csv": csv, "port": master_port}
    html_path = Path(html) if html else None
    if master:
        waiting = expect_workers or workers
        environment.info(f"locust master: waiting for {waiting} worker(s) on port {master_port or locust_run.DEFAULT_MASTER_PORT}")
        report = locust_run.run_master(target, expect_workers=waiting, bind_host=bind_host, html=html_path, **shape, **renewed)
    else:
        report = locust_run.run_local(target, workers=workers, html=html_path, **shape, **renewed)
    _finish_renewal(report, renewing)
    _report(environment, report, json, None, tolerance)


LOAD = Command(
    "load",
    load,
    "Send the payload under load through the auth path and report throughput and latency percentiles.",
    options=(
        PAYLOAD,
        AUTH,
        VIA,
        Option(
            "concurrency",
            f"workers sending at once, each over its own keep-alive connection (default 4, at most {MAX_PARALLEL})",
            kind=int,
            default=4,
            number=PARALLEL,
        ),
        Option(
            "requests", f"how many requests to send (default {DEFAULT_REQUESTS} when --duration is not given)", kind=int, number=COUNT
        ),
        Option("duration", "send for this many seconds instead of a number of requests", kind=float, number=TIMEOUT),
        Option("warmup", "requests sent first and not counted (cold starts stay out of the figures)", kind=int, default=0, number=OR_NONE),
        JSON,
        Option("html", "also write a self-contained HTML report with charts to this file (the load extra)", path=True),
        Option("protocol", "rest (HTTP/JSON) or grpc (ModelInfer over the V2 gRPC service; the grpc extra)", default="rest", choices=PROTOCOLS),
        MAX_ERRORS,
        RENEW,
        Option(
            "rate",
            "send at this fixed rate (requests per second) for --duration: an open model, each latency counted from its due "
            "time (coordinated omission corrected); --concurrency is then the connections, the most requests in flight",
            kind=float,
            number=LOAD_RATE,
        ),
        Option(
            "sweep",
            "one --rate run per rate, START:STOP:STEP or a list (100:1000:100, 100,200,400), each for --duration: "
            "a table of rate against p50/p99/errors and the knee",
        ),
        Option(
            "client",
            "auto, curl (libcurl's multi interface: one thread, a fraction of the CPU per request; pycurl, the load extra) "
            "or http.client (a thread per connection); auto takes curl when pycurl is installed and the load is HTTP",
            default="auto",
        ),
        Option(
            "slo_p99",
            "with --sweep: the p99 latency objective in ms; the knee is the highest rate meeting it with no errors",
            kind=float,
            number=LATENCY_MS,
        ),
    ),
)
LOCUST = Command(
    "locust",
    locust,
    "Run the same load on Locust: local workers, or a master and workers on many machines (the load extra).",
    options=(
        PAYLOAD,
        AUTH,
        VIA,
        Option("workers", f"local worker processes (default 2, at most {MAX_PARALLEL})", kind=int, default=2, number=PARALLEL),
        Option("users", "simulated users in all (default 8)", kind=int, default=8, number=COUNT),
        Option("spawn_rate", "users started per second (default 8)", kind=float, default=8.0, number=RATE),
        Option("run_time", "how long to run, as Locust takes it: 30s, 5m, 1h (default 30s)", default="30s"),
        Option("master", "be the master for workers on other machines", kind=bool, default=False),
        Option("expect_workers", "with --master: how many workers to wait for (default --workers)", kind=int, number=COUNT),
        Option("worker", "be a worker for the master at --master-host (needs no .env)", kind=bool, default=False),
        Option("master_host", "with --worker: the master's address"),
        Option("master_port", "the master's port (default 5557)", kind=int, number=PORT),
        Option(
            "bind_host",
            "with --master: the address workers reach it on (default 127.0.0.1; Locust's channel carries the credential "
            "unencrypted to any worker that connects: open it only on a network you trust)",
            default="127.0.0.1",
        ),
        JSON,
        Option("html", "Locust's own HTML report, written to this file", path=True),
        Option("csv", "Locust's CSV files, written with this prefix", path=True),
        MAX_ERRORS,
        RENEW_AHEAD,
    ),
)
COMMANDS = (LOAD, LOCUST)
