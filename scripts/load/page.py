"""The HTML report of ``kfdex load --html``: what was measured, then charts a person can read.

One self-contained file (plotly's JavaScript inlined once).  The page opens
with what was measured (route, model, kind of credential, concurrency or
rate, duration, date, kfdex version) and the headline figures.  A run's
charts: latency by percentile (HdrHistogram's percentile distribution on a
log scale of 1/(1-p), as wrk2's and vegeta's plots draw it), then throughput
and p50/p90/p99 second by second.  A sweep's: p50/p90/p99/p99.9 and the
achieved rate against the offered rate, the SLO and the knee marked, and each
rate's percentile distribution.  Plotly is the ``load`` extra, imported here
only.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import LoadReport

if TYPE_CHECKING:
    from .sweep import Sweep

PERCENTILE_TICKS = (0.0, 90.0, 99.0, 99.9, 99.99, 99.999)
LINE = {"width": 3}
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#111}h1{font-size:22px;margin:0 0 8px}"
    "table{border-collapse:collapse;margin:8px 0 16px}td{padding:2px 14px 2px 0;vertical-align:top}"
    "td:first-child{color:#555}.figures{font-size:17px;margin:4px 0 12px}"
)


def _plotly() -> Any:
    from .report import require_html

    require_html()
    from plotly import graph_objects

    return graph_objects


def _version() -> str:
    from .. import __version__

    return __version__


def shape(report: LoadReport, measured: Mapping[str, str]) -> dict[str, str]:
    """The page's header rows: what the caller says was measured, the run's own duration, the date and the version."""
    rows = dict(measured)
    rows.setdefault("duration", f"{report.duration_s:.2f} s")
    rows["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows["kfdex"] = _version()
    return rows


GENERATOR = "<meta name='generator' content='kfdex'>"  # marks a page as ours: a later run may write over it


def _head(title: str, rows: Mapping[str, str], figures: str) -> str:
    cells = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>" for name, value in rows.items())
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><table>{cells}</table><p class='figures'>{html.escape(figures)}</p>"
    )


def _page(path: Path, title: str, rows: Mapping[str, str], figures: str, charts: Sequence[Any]) -> Path:
    """Write the header and the charts, plotly's JavaScript inlined with the first."""
    parts = [_head(title, rows, figures)]
    for index, chart in enumerate(charts):
        parts.append(chart.to_html(full_html=False, include_plotlyjs=index == 0))
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def distribution(latencies_us: Any) -> tuple[list[float], list[float], list[float]]:
    """HdrHistogram's percentile distribution: x as 1/(1-p) (for the log axis), latency in ms, and the percentile."""
    from .report import histogram

    recorded = histogram(latencies_us)
    total = recorded.get_total_count()
    if not total:
        return [], [], []
    last = 1.0 - 1.0 / total  # 100 % would sit at infinity: draw it at the last sample's place
    xs, ms, levels = [], [], []
    for step in recorded.get_percentile_iterator(5):
        level = min(step.percentile_level_iterated_to / 100.0, last)
        xs.append(1.0 / (1.0 - level))
        ms.append(step.value_iterated_to / 1000.0)
        levels.append(step.percentile_level_iterated_to)
    return xs, ms, levels


def _percentile_axis(chart: Any, top: int) -> None:
    ticks = [tick for tick in PERCENTILE_TICKS if 1.0 / (1.0 - tick / 100.0) <= max(top, 10) * 10]
    chart.update_xaxes(
        type="log",
        title_text="percentile",
        tickvals=[1.0 / (1.0 - tick / 100.0) for tick in ticks],
        ticktext=[f"{tick:g}%" for tick in ticks],
    )
    chart.update_yaxes(title_text="latency (ms)", rangemode="tozero")


def percentile_chart(lines: Sequence[tuple[str, Any]], title: str) -> Any:
    """Latency by percentile, one line per (name, latencies in µs)."""
    go = _plotly()
    chart = go.Figure()
    most = 0
    for name, latencies in lines:
        xs, ms, levels = distribution(latencies)
        most = max(most, len(latencies))
        chart.add_trace(
            go.Scatter(
                x=xs,
                y=ms,
                name=name,
                mode="lines+markers",
                line=LINE,
                customdata=levels,
                hovertemplate="p%{customdata:.3f}: %{y:.2f} ms",
            )
        )
    _percentile_axis(chart, most)
    chart.update_layout(title_text=title, height=480)
    return chart


def write_load(report: LoadReport, path: Path, measured: Mapping[str, str], title: str = "kfdex load") -> Path:
    """One run's page: the header, latency by percentile, and throughput and percentiles second by second."""
    from plotly.subplots import make_subplots

    from .report import PERCENTILES, series, summary

    go = _plotly()
    figures = summary(report)
    latency = figures["latency_ms"]
    headline = (
        f"{figures['requests']} requests, {figures['throughput_rps']} req/s, errors {figures['errors'] or 0}; "
        f"latency p50 {latency['p50']} ms, p90 {latency['p90']} ms, p99 {latency['p99']} ms, max {latency['max']} ms"
    )
    if "rate" in figures:
        kept = figures["rate"]
        headline += (
            f"; offered {kept['offered']:g} req/s, achieved {kept['achieved']}, late {kept['late']}, skipped {kept['skipped']}"
            f", send lag p50 {kept['send_lag_ms']['p50']} ms, p99 {kept['send_lag_ms']['p99']} ms"
        )
    if report.note:
        headline += f"; {report.note}"
    rows = series(report)
    seconds = [row["second"] for row in rows]
    over_time = make_subplots(
        rows=2, cols=1, subplot_titles=("Requests started per second", "Latency percentiles by second (ms)")
    )
    over_time.add_trace(go.Scatter(x=seconds, y=[row["requests"] for row in rows], name="requests/s", line=LINE), 1, 1)
    over_time.add_trace(go.Scatter(x=seconds, y=[row["errors"] for row in rows], name="errors/s", line=LINE), 1, 1)
    for name, _ in PERCENTILES:
        over_time.add_trace(go.Scatter(x=seconds, y=[row[name] for row in rows], name=name, line=LINE), 2, 1)
    over_time.update_xaxes(title_text="second of the run")
    over_time.update_layout(height=640)
    charts = [percentile_chart([("latency", report.latencies_us)], "Latency distribution by percentile"), over_time]
    return _page(path, title, shape(report, measured), headline, charts)


def write_sweep(sweep: Sweep, path: Path, measured: Mapping[str, str], title: str = "kfdex load --sweep") -> Path:
    """A sweep's page: percentiles and achieved rate against offered rate, the SLO and knee, each rate's distribution."""
    from .report import histogram

    go = _plotly()
    offered = [step.rate for step in sweep.steps]
    chart = go.Figure()
    for name, level in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)):
        values = [histogram(step.report.latencies_us).get_value_at_percentile(level) / 1000.0 for step in sweep.steps]
        chart.add_trace(go.Scatter(x=offered, y=values, name=name, mode="lines+markers", line=LINE))
    if sweep.slo_p99_ms is not None:
        chart.add_hline(
            y=sweep.slo_p99_ms, line_dash="dash", line_color="#c00", annotation_text=f"SLO p99 {sweep.slo_p99_ms:g} ms"
        )
    if sweep.knee is not None:
        chart.add_vline(x=sweep.knee, line_dash="dot", line_color="#080", annotation_text=f"knee {sweep.knee:g} req/s")
    chart.update_xaxes(title_text="offered rate (req/s)")
    chart.update_yaxes(title_text="latency (ms)", rangemode="tozero")
    chart.update_layout(title_text="Latency percentiles against offered rate", height=520)
    kept = go.Figure()
    kept.add_trace(go.Scatter(x=offered, y=offered, name="offered", mode="lines", line={"dash": "dash", "color": "#888"}))
    kept.add_trace(
        go.Scatter(
            x=offered, y=[step.report.achieved_rps for step in sweep.steps], name="achieved", mode="lines+markers", line=LINE
        )
    )
    kept.update_xaxes(title_text="offered rate (req/s)")
    kept.update_yaxes(title_text="achieved rate (req/s)")
    kept.update_layout(title_text="Achieved against offered rate", height=400)
    each = percentile_chart(
        [(f"{step.rate:g} req/s", step.report.latencies_us) for step in sweep.steps],
        "Latency distribution by percentile, per rate",
    )
    knee = f"knee {sweep.knee:g} req/s" if sweep.knee is not None else "no knee found"
    slo = f" for p99 ≤ {sweep.slo_p99_ms:g} ms with no errors" if sweep.slo_p99_ms is not None else " (no --slo-p99 given)"
    headline = (
        f"{len(sweep.steps)} rates from {offered[0]:g} to {offered[-1]:g} req/s; {knee}{slo}" if offered else "no rate was run"
    )
    if sweep.stopped_early:
        headline += f"; {sweep.stopped_early}"
    rows = dict(measured)
    if sweep.steps:
        rows.setdefault("duration", f"{sweep.steps[0].report.window_s:g} s per rate")
    return _page(path, title, shape(sweep.last or LoadReport(0, {}, 0.0), rows), headline, [chart, kept, each])
