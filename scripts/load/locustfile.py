"""The Locust file of ``kfdex locust``: the same request as ``kfdex load``, from Locust's FastHttpUser.

It imports nothing of the project (Locust loads it by path, installed or not).
The master reads what to send from environment variables that
``scripts.load.locust_run`` sets (never argv: they hold the credential):
``KFDEX_LOAD_TARGET`` (JSON: ``path``, ``method``, ``headers``, ``body`` in
base64) and ``KFDEX_LOCUST_REPORT`` (where it writes the final figures).  It
sends the target to every worker over Locust's own message channel, when the
worker connects and again when the test starts, so workers need no .env and
no password.  Users wait for it before their first request.  With ``kfdex
locust --renew``, ``KFDEX_TARGET_UPDATES`` names a pipe on which ``kfdex``
writes each renewed target (one JSON line): the master takes it and sends it to
every worker the same way, before the session ends.

Nothing is retried and no redirect is followed.  Each answer's status is
counted on the worker and reported to the master with Locust's regular
reports; a non-2xx answer is a Locust failure named by its status.  An answer
that sends the call to a login (3xx to ``/dex/`` or ``/oauth2/``, 401, 403
sign-in page) is a failure too, never a login: that worker's users stop
sending at once (a dead credential is not hammered at the gateway) and it tells
the master, which stops the run (the workers' final reports still arrive) and
marks it ``session_expired``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent.event
from locust import FastHttpUser, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner


def _signals() -> Any:
    """``scripts/auth/signals.py``, loaded by path: Locust runs this file outside the package."""
    spec = importlib.util.spec_from_file_location("kfdex_signals", Path(__file__).resolve().parents[1] / "auth" / "signals.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


session_refused = _signals().session_refused

TARGET_MESSAGE = "kfdex_target"
EXPIRED_MESSAGE = "kfdex_session_expired"  # a worker to the master: the gateway asked for a login
TARGET_ENV = "KFDEX_LOAD_TARGET"
REPORT_ENV = "KFDEX_LOCUST_REPORT"
UPDATES_ENV = "KFDEX_TARGET_UPDATES"
TARGET_WAIT = 30.0

_target: dict[str, Any] = {}
_ready = gevent.event.Event()
_statuses: Counter[str] = Counter()  # on a worker: since the last report; on the master: the whole run
_expired = {"seen": False}
_started = {"at": 0.0}
_runner: dict[str, Any] = {}


def _use(target: dict[str, Any]) -> None:
    _target.update(target, body=base64.b64decode(target["body"]))
    _ready.set()


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    _runner["runner"] = runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(TARGET_MESSAGE, lambda msg, **_: _use(msg.data))
        return
    target = json.loads(os.environ.get(TARGET_ENV) or "{}")
    if not target:
        raise SystemExit(f"{TARGET_ENV} is not set: start Locust with `kfdex locust`, which sets it")
    if isinstance(runner, MasterRunner):
        runner.register_message(EXPIRED_MESSAGE, lambda **_: _end_expired())
        current = {"target": target}

        def send(client_id: str | None = None, **_: Any) -> None:
            runner.send_message(TARGET_MESSAGE, current["target"], client_id=client_id)

        environment.events.worker_connect.add_listener(send)
        environment.events.test_start.add_listener(lambda **_: send())
        if os.environ.get(UPDATES_ENV):
            gevent.spawn(_follow_updates, int(os.environ[UPDATES_ENV]), current, send)
    _use(target)  # the master (or a single local process) knows it already


def _follow_updates(descriptor: int, current: dict[str, Any], send: Any) -> None:
    """On the master: each renewed target kfdex writes to the pipe is used here and sent to every worker."""
    from gevent.fileobject import FileObjectPosix

    with FileObjectPosix(descriptor, "rb", close=False) as updates:
        for line in updates:
            current["target"] = json.loads(line)
            _use(current["target"])
            send()


@events.report_to_master.add_listener
def _on_report_to_master(data: dict[str, Any], **_: Any) -> None:
    data["kfdex_statuses"] = dict(_statuses)
    data["kfdex_session_expired"] = _expired["seen"]
    _statuses.clear()


@events.worker_report.add_listener
def _on_worker_report(data: dict[str, Any], **_: Any) -> None:
    _statuses.update(data.get("kfdex_statuses") or {})
    if data.get("kfdex_session_expired"):
        _end_expired()


def _end_expired() -> None:
    """On the master: the session is over; a worker never logs in, so the run ends with the partial report."""
    if _expired["seen"]:
        return
    _expired["seen"] = True
    runner = _runner.get("runner")
    if isinstance(runner, MasterRunner):
        gevent.spawn_later(0, runner.quit)  # quitting waits for the workers' final reports


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    _started["at"] = _started["at"] or time.time()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    """On the master (or a single process): write the run's figures where kfdex locust reads them."""
    path = os.environ.get(REPORT_ENV)
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    total = environment.stats.total
    started = _started["at"] or total.start_time
    ended = max(total.last_request_timestamp or started, started)
    report = {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "response_times_ms": {str(key): count for key, count in total.response_times.items()},
        "statuses": dict(_statuses),
        "requests_per_second": {str(key): count for key, count in total.num_reqs_per_sec.items()},
        "failures_per_second": {str(key): count for key, count in total.num_fail_per_sec.items()},
        "started": started,
        "ended": ended,
        "session_expired": _expired["seen"],
    }
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(report, file)
    os.replace(temporary, path)


class KfdexUser(FastHttpUser):
    """Sends the kfdex target request, back to back, with no wait."""

    # the target's Host header and credential travel in its headers; the URL's origin is Locust's --host

    @task
    def send(self) -> None:
        if _expired["seen"]:
            raise StopUser()  # the credential is dead: the master, told at once, ends the run; no more calls meanwhile
        if not _ready.wait(TARGET_WAIT):
            raise RuntimeError("no target from the master: is it running kfdex's locustfile?")
        with self.client.request(
            _target["method"],
            _target["path"],
            name=_target.get("name") or _target["path"],
            data=_target["body"],
            headers=_target["headers"],
            allow_redirects=False,
            catch_response=True,
        ) as response:
            status = response.status_code or 0
            _statuses[str(status) if status else "connection-error"] += 1
            if 200 <= status < 300:
                response.success()
                return
            location = response.headers.get("Location", "") if response.headers else ""
            if status and session_refused(status, location, response.content or b""):
                if not _expired["seen"] and isinstance(_runner.get("runner"), WorkerRunner):
                    _runner["runner"].send_message(EXPIRED_MESSAGE)  # now, not at the next report (every 3 s)
                _expired["seen"] = True
                response.failure(f"HTTP {status}: the gateway asked for a login (session expired)")
            else:
                response.failure(f"HTTP {status}" if status else "connection error")
