"""What a load run measured, for a person and for a program: the table, the JSON object and the HTML report.

Latency percentiles come from an HDR histogram (``hdrhistogram``, three
significant digits, so every figure is within 0.1 % of the sample it stands
for).  The JSON object has exactly the keys the issue documents:
``requests``, ``errors`` (status → count), ``throughput_rps``,
``latency_ms`` (``min``, ``p50``, ``p90``, ``p99``, ``max``) and
``duration_s``.  The HTML report is one self-contained file (``page``: plotly with its
JavaScript inlined).  Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from .engine import LoadReport, succeeded
from .rate import LATE_AFTER_S, RateReport

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
_HIGHEST_US = 3_600_000_000  # one hour, in microseconds


def histogram(latencies_us: Any) -> HdrHistogram:
    """An HDR histogram of latencies in microseconds."""
    from hdrh.histogram import HdrHistogram

    recorded = HdrHistogram(1, _HIGHEST_US, 3)
    for value, count in Counter(latencies_us).items():  # one call per distinct value: a run repeats most of its values
        recorded.record_value(min(max(1, int(value)), _HIGHEST_US), count)
    return recorded


def _ms(microseconds: float) -> float:
    return round(microseconds / 1000, 3)


def latency_ms(recorded: HdrHistogram) -> dict[str, float]:
    """min / p50 / p90 / p99 / max in milliseconds (all zero when nothing was recorded)."""
    if recorded.get_total_count() == 0:
        return {"min": 0.0, **{name: 0.0 for name, _ in PERCENTILES}, "max": 0.0}
    figures = {"min": _ms(recorded.get_min_value())}
    for name, percentile in PERCENTILES:
        figures[name] = _ms(recorded.get_value_at_percentile(percentile))
    figures["max"] = _ms(recorded.get_max_value())
    return figures


def summary(report: LoadReport) -> dict[str, Any]:
    """The JSON object of ``--json``: exactly the documented keys."""
    duration = round(report.duration_s, 3)
    figures = {
        "requests": report.requests,
        "errors": report.errors,
        "throughput_rps": round(report.requests / report.duration_s, 1) if report.duration_s > 0 else 0.0,
        "latency_ms": latency_ms(histogram(report.latencies_us)),
        "duration_s": duration,
        **({"rate": rate_figures(report)} if isinstance(report, RateReport) else {}),
    }
    if report.renewals is not None:  # --renew
        figures["renewals"] = report.renewals
    return figures


def rate_figures(report: RateReport) -> dict[str, Any]:
    """What a fixed-rate run offered and kept: ``offered`` and ``achieved`` req/s, ``late`` and ``skipped`` sends,
    and ``send_lag_ms``: how long after their due time the sends left (p50, p99), the client's own share of each latency."""
    lag = latency_ms(histogram(report.lags_us)) if len(report.lags_us) else {"p50": 0.0, "p99": 0.0}
    return {
        "offered": round(report.offered_rps, 3),
        "achieved": round(report.achieved_rps, 1),
        "late": report.late,
        "skipped": report.skipped,
        "send_lag_ms": {"p50": lag["p50"], "p99": lag["p99"]},
    }


def behind(report: RateReport) -> str:
    """A sentence when the schedule was not kept (sends skipped, or more than 1 % of them late), else ""."""
    if not report.skipped and report.late <= report.requests / 100:
        return ""
    return (
        f"the schedule was not kept: {report.late} of {report.requests} sends left more than {LATE_AFTER_S * 1000:g} ms late"
        f" and {report.skipped} were skipped (all {report.connections} connections busy waiting for answers, or the client short of CPU);"
        " latency counts from each due time; raise --concurrency, or the server is past its limit"
    )


def to_json(report: LoadReport) -> str:
    """``summary`` as one line of JSON."""
    return json.dumps(summary(report))


def table(report: LoadReport) -> str:
    """The end-of-run table as aligned plain text."""
    figures = summary(report)
    latency = figures["latency_ms"]
    errors = figures["errors"]
    rows = [
        ("requests", str(figures["requests"])),
        ("errors", ", ".join(f"{status}: {count}" for status, count in errors.items()) if errors else "0"),
        ("throughput", f"{figures['throughput_rps']:.1f} req/s"),
        ("latency (ms)", "  ".join(f"{name} {latency[name]:.2f}" for name in ("min", "p50", "p90", "p99", "max"))),
        ("wall time", f"{figures['duration_s']:.2f} s"),
    ]
    if isinstance(report, RateReport):
        kept = figures["rate"]
        offered = f"offered {kept['offered']:g} req/s, achieved {kept['achieved']:.1f}"
        lag = kept["send_lag_ms"]
        rows.insert(3, ("rate", f"{offered}, late {kept['late']}, skipped {kept['skipped']}"))
        rows.insert(4, ("send lag (ms)", f"p50 {lag['p50']:.3f}  p99 {lag['p99']:.3f} (due time to send, part of each latency)"))
        if lag := behind(report):
            rows.append(("behind", lag))
    if report.renewals is not None:
        rows.append(("renewals", str(report.renewals)))
    if report.note:
        rows.append(("note", report.note))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def series(report: LoadReport) -> list[dict[str, float]]:
    """Per-second figures: ``second``, ``requests``, ``errors``, ``p50``, ``p90``, ``p99`` (ms), by when each request started."""
    buckets: dict[int, list[tuple[int, str]]] = {}
    for offset, latency, code in zip(report.offsets, report.latencies_us, report.codes, strict=False):
        buckets.setdefault(int(offset), []).append((latency, code))
    rows = []
    for second in range(max(buckets) + 1 if buckets else 0):
        samples = buckets.get(second, [])
        figures = latency_ms(histogram(latency for latency, _ in samples))
        rows.append(
            {
                "second": second,
                "requests": len(samples),
                "errors": sum(1 for _, code in samples if not succeeded(code)),
                **{name: figures[name] for name, _ in PERCENTILES},
            }
        )
    return rows


def require_html() -> None:
    """A UsageError naming the extra when plotly is missing: checked before a run, not after it."""
    from ..core.extras import require

    require("load", "--html", modules=("plotly",))
