"""What a load run measured, for a person and for a program: the table, the JSON object and the HTML report.

Latency percentiles come from an HDR histogram (``hdrhistogram``, three
significant digits, so every figure is within 0.1 % of the sample it stands
for).  The JSON object has exactly the keys the issue documents:
``requests``, ``errors`` (status → count), ``throughput_rps``,
``latency_ms`` (``min``, ``p50``, ``p90``, ``p99``, ``max``) and
``duration_s``.  The HTML report is one self-contained file (plotly with its
JavaScript inlined): throughput and latency percentiles per second, and the
latency distribution.  Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import LoadReport, succeeded

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
_HIGHEST_US = 3_600_000_000  # one hour, in microseconds


def histogram(latencies_us: Any) -> HdrHistogram:
    """An HDR histogram of latencies in microseconds."""
    from hdrh.histogram import HdrHistogram

    recorded = HdrHistogram(1, _HIGHEST_US, 3)
    for value in latencies_us:
        recorded.record_value(min(max(1, int(value)), _HIGHEST_US))
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
    }
    if report.renewals is not None:  # --renew
        figures["renewals"] = report.renewals
    return figures


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
    from ..extras import require

    require("load", "--html", modules=("plotly",))


def write_html(report: LoadReport, path: Path, title: str = "kfdex load") -> Path:
    """A self-contained HTML report (plotly, JavaScript inlined): throughput and percentiles over time, latency distribution."""
    require_html()
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    rows = series(report)
    seconds = [row["second"] for row in rows]
    figure = make_subplots(
        rows=3,
        cols=1,
        subplot_titles=("Throughput (requests started per second)", "Latency percentiles over time (ms)", "Latency distribution (ms)"),
        vertical_spacing=0.09,
    )
    figure.add_trace(go.Scatter(x=seconds, y=[row["requests"] for row in rows], name="requests/s", mode="lines+markers"), 1, 1)
    figure.add_trace(go.Scatter(x=seconds, y=[row["errors"] for row in rows], name="errors/s", mode="lines+markers"), 1, 1)
    for name, _ in PERCENTILES:
        figure.add_trace(go.Scatter(x=seconds, y=[row[name] for row in rows], name=name, mode="lines+markers"), 2, 1)
    recorded = histogram(report.latencies_us)
    values, counts = [], []
    if recorded.get_total_count():
        for step in recorded.get_recorded_iterator():
            values.append(_ms(step.value_iterated_to))
            counts.append(step.count_added_in_this_iter_step)
    figure.add_trace(go.Bar(x=values, y=counts, name="requests"), 3, 1)
    figure.update_xaxes(title_text="second of the run", row=1, col=1)
    figure.update_xaxes(title_text="second of the run", row=2, col=1)
    figure.update_xaxes(title_text="latency (ms)", type="log", row=3, col=1)
    figures = summary(report)
    latency = figures["latency_ms"]
    subtitle = (
        f"{figures['requests']} requests, {figures['throughput_rps']} req/s, errors {figures['errors'] or 0}, "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, {figures['duration_s']} s"
    )
    figure.update_layout(title_text=f"{title}<br><sub>{subtitle}</sub>", height=1100, showlegend=True)
    path = Path(path)
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
