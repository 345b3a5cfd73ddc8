"""The HTML report as a person sees it: rendered by headless Chromium, its charts drawn, its header saying what ran.

Skipped when Chromium is not installed (Debian's ``chromium`` package; .ci/run installs it).
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

from scripts.load import sweep
from scripts.load.page import write_load, write_sweep
from scripts.load.rate import RateReport

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ABOUT = {"route": "POST http://127.0.0.1:9/v2/models/m/infer (via ingress)", "model": "m", "credential": "session cookie"}


def measured(rate: float, scale_us: float) -> RateReport:
    """Two seconds at ``rate`` with exponential latencies: what a run of the engine would report."""
    rng = random.Random(rate)
    count = int(rate * 2)
    return RateReport(
        requests=count,
        statuses={"200": count},
        duration_s=2.0,
        offsets=array("d", [index / rate for index in range(count)]),
        latencies_us=array("q", [500 + int(rng.expovariate(1 / scale_us)) for _ in range(count)]),
        codes=["200"] * count,
        offered_rps=rate,
        window_s=2.0,
        scheduled=count,
        connections=8,
    )


def coloured(png: bytes) -> int:
    """Pixels of a strong colour (a drawn line or marker: text, grid and background are grey or white)."""
    from PIL import Image, ImageChops

    red, green, blue = Image.open(io.BytesIO(png)).convert("RGB").split()
    strongest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    weakest = ImageChops.darker(ImageChops.darker(red, green), blue)
    spread = ImageChops.subtract(strongest, weakest)  # max - min of the three: 0 for any grey
    return sum(spread.histogram()[81:])  # a spread of more than 80


def screenshot(page: Path, folder: Path, size: str = "900,1000") -> bytes:
    shot = folder / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # as root in a container
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size}",
            "--virtual-time-budget=5000",  # let plotly draw before the picture is taken
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return shot.read_bytes()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_runs_report_draws_its_charts_in_a_browser(tmp_path: Path) -> None:
    page = write_load(measured(200, 3000), tmp_path / "load.html", {**ABOUT, "load": "fixed rate: 200 req/s"})
    text = page.read_text()
    for said in ("route", "session cookie", "fixed rate: 200 req/s", "kfdex", "date", "Latency distribution by percentile"):
        assert said in text
    assert coloured(screenshot(page, tmp_path)) > 2000  # the lines are drawn, thick enough to see


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_sweeps_report_draws_percentiles_against_rate(tmp_path: Path) -> None:
    result = sweep.run_sweep([100, 200, 300], 20.0, lambda rate: measured(rate, 25 * rate))
    page = write_sweep(result, tmp_path / "sweep.html", ABOUT)
    assert "Latency percentiles against offered rate" in page.read_text()
    assert coloured(screenshot(page, tmp_path)) > 2000


def test_the_blank_check_can_fail(tmp_path: Path) -> None:
    """A page without charts has no coloured pixel: the check above would catch a report that draws nothing."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "blank.html"
    page.write_text("<html><body><h1>kfdex load</h1><p>text only</p></body></html>")
    assert coloured(screenshot(page, tmp_path, "400,300")) == 0
