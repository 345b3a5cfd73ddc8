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

from .environment import Environment
from .errors import GatewayError, ModelError, SessionError, UsageError
from .state import EnvFile, State
from .step import AUTH, PAYLOAD, Command, Option
from .values import COUNT, MAX_PARALLEL, OR_NONE, PARALLEL, PORT, RATE, TIMEOUT, Number, is_host, shown, timespan

if TYPE_CHECKING:
    from .load.engine import LoadReport, LoadTarget
    from .load.renewal import Renewal

VIA = Option("via", "nodeport or ingress (default: the NodePort when NODE_PORT is set, else the ingress with MODEL_HOST)")
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
    return _target_of(env_file.read(), environment, payload, auth, via)


def _target_of(state: State, environment: Environment, payload: str, auth: str, via: str | None) -> LoadTarget:
    from .infer import prepare
    from .load.engine import LoadTarget

    call = prepare(state, environment, payload, auth, via)
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


def _check_folders(*given: tuple[str, str | None]) -> None:
    """A report written at the end of a run goes to a folder that exists: checked before the run, not after it."""
    for flag, path in given:
        if path and not Path(path).expanduser().parent.is_dir():
            raise UsageError(f"{flag} {shown(path)}: its folder does not exist; create it or give another path")


def _report(environment: Environment, report: LoadReport, as_json: bool, html: str | None, tolerance: Tolerance) -> None:
    """Print the figures, write the HTML report if asked, and end as the run ended: failed requests fail the command."""
    from .load import report as figures

    environment.data(figures.to_json(report) if as_json else figures.table(report))
    if html:
        try:
            written = figures.write_html(report, Path(html))
        except OSError as error:
            raise UsageError(f"--html {shown(html)}: cannot write the report ({error.strerror}); the figures are above") from None
        environment.info(f"report written to {written}")
    if report.session_expired:
        raise SessionError(f"the gateway stopped accepting the session during the run ({report.note}): run `invoke login`")
    if report.interrupted:
        raise KeyboardInterrupt
    if report.requests == 0:
        raise ModelError("the run completed no request: nothing was measured (see the figures above)")
    failed = sum(report.errors.values())
    if not tolerance.allows(failed, report.requests):
        statuses = ", ".join(f"{status} ×{count}" for status, count in report.errors.items())
        raise ModelError(
            f"{failed} of {report.requests} requests failed ({statuses}), more than --max-errors {tolerance} allows: "
            "see the figures above"
        )


def renewal(
    env_file: EnvFile, environment: Environment, overrides: Mapping[str, str], payload: str, auth: str, via: str | None
) -> tuple[Renewal, Callable[[], float | None]]:
    """``--renew``: the run's target and how to renew it, through the library's login (``scripts.api``), and the seconds left."""
    from .api import Kubeflow
    from .load.renewal import Renewal

    kubeflow = Kubeflow.for_command(env_file, environment, overrides)

    def target(state: State) -> LoadTarget:
        return _target_of(state, environment, payload, auth, via)

    def renewed() -> LoadTarget:
        kubeflow.renew()
        return target(kubeflow.state)

    return Renewal(kubeflow.with_renewal(target), renewed), kubeflow.remaining  # a session already over is renewed first


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
    renew: bool = False,
) -> None:
    """Send the payload ``requests`` times (or for ``duration`` seconds) from ``concurrency`` workers and report."""
    if requests is not None and duration is not None:
        raise UsageError("give --requests or --duration, not both")
    if renew and protocol != "rest":
        raise UsageError("--renew works with REST load: leave out --protocol grpc")
    tolerance = Tolerance.parse(max_errors)
    if html:
        from .load.report import require_html

        require_html()
    _check_folders(("--html", html))
    from .infer import grpc_asked
    from .load.engine import run_load
    from .load.progress import live_progress

    senders = None
    renewing = None
    if grpc_asked(protocol):  # grpc loads only when asked for
        from .grpcv2 import load_senders

        target, senders = None, load_senders(env_file.read(), environment, payload, auth, via)
    elif renew:
        from .load.engine import HttpSender
        from .load.renewal import RenewingSender

        renewing, _remaining = renewal(env_file, environment, overrides, payload, auth, via)
        target = renewing.target
        senders = partial(RenewingSender, renewing, HttpSender)
    else:
        target = _target(env_file, environment, payload, auth, via)
    bound = {"duration": duration} if duration is not None else {"requests": requests or DEFAULT_REQUESTS}  # never 0: COUNT
    with live_progress(stream=environment.stderr) as progress:
        report = run_load(target, concurrency=concurrency, warmup=warmup, progress=progress, senders=senders, **bound)
    _finish_renewal(report, renewing)
    _report(environment, report, json, html, tolerance)


def _finish_renewal(report: LoadReport, renewing: Renewal | None) -> None:
    """``--renew``: the report counts the renewals, and says why one failed."""
    if renewing is not None:
        report.renewals = renewing.renewals
        if renewing.failure:
            report.note = f"{report.note}; renewing it failed: {renewing.failure}"


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
    from .load import locust_run

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
        Option("protocol", "rest (HTTP/JSON) or grpc (ModelInfer over the V2 gRPC service; the grpc extra)", default="rest"),
        MAX_ERRORS,
        RENEW,
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
