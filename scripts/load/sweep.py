"""``kfdex load --sweep``: one fixed-rate run per rate, rate against percentiles, and the model's knee.

``rates`` reads ``START:STOP:STEP`` (STOP included) or a comma list.
``run_sweep`` runs ``rate.run_rate`` at each rate in turn, for the same
duration over the same connections, and stops early once the SLO is clearly
broken (p99 over twice the SLO, 1 % of answers failed, or 1 % of sends
skipped: higher rates would only be worse), or when a run was stopped (Ctrl-C,
a login asked for).  The knee is the highest rate whose p99 met the SLO with
no failed answer and no skipped send, in a run that was not cut short.  ``table`` and ``summary`` give it to a
person and to a program.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UsageError
from ..core.values import LATENCY_MS
from .rate import RateReport, check_rate, run_rate

MAX_STEPS = 50
CLEARLY_BROKEN = 2.0  # p99 over this many times the SLO ends the sweep
FAILED_SHARE = 0.01  # as do this share of failed answers, or of skipped sends


def rates(spec: str) -> list[float]:
    """The rates of ``START:STOP:STEP`` (STOP included) or ``R1,R2,...``, rising; a UsageError for anything else."""
    try:
        if ":" in spec:
            start, stop, step = (float(part) for part in spec.split(":"))
            if not all(math.isfinite(value) for value in (start, stop, step)) or step <= 0 or stop < start:
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            found = [round(start + index * step, 6) for index in range(min(count, MAX_STEPS + 1))]
        else:
            found = [float(part) for part in spec.split(",")]
    except ValueError:
        raise UsageError(f"--sweep {spec}: give START:STOP:STEP (100:1000:100) or a list of rates (100,200,400)") from None
    if not found or any(not math.isfinite(rate) or rate <= 0 for rate in found) or found != sorted(set(found)):
        raise UsageError(f"--sweep {spec}: give positive rates, rising")
    if len(found) > MAX_STEPS:
        raise UsageError(f"--sweep {spec}: {len(found)} or more steps; give at most {MAX_STEPS}")
    return found


@dataclass
class Step:
    """One rate of the sweep and what it measured."""

    rate: float
    report: RateReport
    p50_ms: float
    p99_ms: float

    @property
    def failed(self) -> int:
        return sum(self.report.errors.values())

    @property
    def cut_short(self) -> bool:
        """The run was stopped before its duration (Ctrl-C, a login asked for): it measured part of a step."""
        return self.report.interrupted or self.report.session_expired

    def meets(self, slo_p99_ms: float | None) -> bool:
        """A whole run with p99 within the SLO, no failed answer, no skipped send."""
        return (
            slo_p99_ms is not None
            and not self.cut_short
            and self.p99_ms <= slo_p99_ms
            and not self.failed
            and not self.report.skipped
        )

    def broken(self, slo_p99_ms: float | None) -> str:
        """Why higher rates need not be tried, or ""."""
        if self.cut_short:
            return self.report.note or "stopped"
        if slo_p99_ms is not None and self.p99_ms > CLEARLY_BROKEN * slo_p99_ms:
            return f"p99 {self.p99_ms:g} ms is over {CLEARLY_BROKEN:g}× the SLO"
        if self.failed > FAILED_SHARE * max(1, self.report.requests):
            return f"{self.failed} of {self.report.requests} answers failed"
        if self.report.skipped > FAILED_SHARE * max(1, self.report.scheduled):
            return f"{self.report.skipped} sends skipped: the client could not keep the rate"
        return ""


@dataclass
class Sweep:
    """The steps run, the SLO, and why the sweep stopped before its last rate ("" when it ran them all)."""

    slo_p99_ms: float | None
    steps: list[Step] = field(default_factory=list)
    stopped_early: str = ""

    @property
    def knee(self) -> float | None:
        """The highest rate whose p99 met the SLO with no errors (None without an SLO or when none did)."""
        met = [step.rate for step in self.steps if step.meets(self.slo_p99_ms)]
        return max(met) if met else None

    @property
    def last(self) -> RateReport | None:
        return self.steps[-1].report if self.steps else None


def check_sweep(
    rates_wanted: list[float], duration: float | None, connections: int, warmup: int, slo_p99_ms: float | None
) -> None:
    """A UsageError for a sweep that makes no sense: every step is checked before the first is sent."""
    if slo_p99_ms is not None:
        LATENCY_MS.check(slo_p99_ms, f"--slo-p99 {slo_p99_ms:g}")
    for rate in rates_wanted:
        check_rate(rate, duration, connections, warmup, flag="--sweep")


def run_sweep(
    rates_wanted: list[float],
    slo_p99_ms: float | None,
    run: Callable[[float], RateReport],
    on_step: Callable[[Step], None] | None = None,
) -> Sweep:
    """``run(rate)`` for each rate, rising, until the last or until the SLO is clearly broken."""
    from .report import histogram, latency_ms

    sweep = Sweep(slo_p99_ms)
    for index, rate in enumerate(rates_wanted):
        report = run(rate)
        figures = latency_ms(histogram(report.latencies_us))
        step = Step(rate, report, figures["p50"], figures["p99"])
        sweep.steps.append(step)
        if on_step is not None:
            on_step(step)
        why = step.broken(slo_p99_ms)
        if why:
            if index < len(rates_wanted) - 1 or report.interrupted or report.session_expired:
                sweep.stopped_early = f"stopped after {rate:g} req/s: {why}"
            break
    return sweep


def rate_runner(target: Any, *, duration: float, connections: int, warmup: int, **more: Any) -> Callable[[float], RateReport]:
    """``run(rate)`` for ``run_sweep``: one fixed-rate run of ``target`` with the sweep's shape."""
    return lambda rate: run_rate(target, rate=rate, duration=duration, connections=connections, warmup=warmup, **more)


def summary(sweep: Sweep) -> dict[str, Any]:
    """The JSON object of ``--sweep --json``: the SLO, the knee, why it stopped early, and each step's load summary."""
    from .report import summary as step_summary

    return {
        "slo_p99_ms": sweep.slo_p99_ms,
        "knee_rps": sweep.knee,
        "stopped_early": sweep.stopped_early,
        "steps": [step_summary(step.report) for step in sweep.steps],
    }


def table(sweep: Sweep) -> str:
    """Rate against achieved rate, p50, p99, errors, late and skipped sends; then the knee."""
    header = ("rate", "achieved", "p50 ms", "p99 ms", "errors", "late", "skipped", "SLO")
    rows = [header]
    for step in sweep.steps:
        report = step.report
        verdict = "cut short" if step.cut_short else "" if sweep.slo_p99_ms is None else ("met" if step.meets(sweep.slo_p99_ms) else "missed")
        rows.append(
            (
                f"{step.rate:g}",
                f"{report.achieved_rps:.1f}",
                f"{step.p50_ms:.2f}",
                f"{step.p99_ms:.2f}",
                str(step.failed),
                str(report.late),
                str(report.skipped),
                verdict,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if sweep.slo_p99_ms is None:
        lines.append("knee: give --slo-p99 MS to find it")
    elif sweep.knee is None:
        lines.append(f"knee: no rate met p99 ≤ {sweep.slo_p99_ms:g} ms with no errors")
    else:
        lines.append(f"knee: {sweep.knee:g} req/s, the highest rate whose p99 met {sweep.slo_p99_ms:g} ms with no errors")
    if sweep.stopped_early:
        lines.append(sweep.stopped_early)
    return "\n".join(lines)
