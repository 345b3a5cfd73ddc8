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


PAGE_SIZE = (900, 1000)


def screenshots(pages: list[Path], folder: Path) -> list[bytes]:
    """Each page as a PNG of ``PAGE_SIZE``, all drawn side by side in one headless Chromium (a launch costs seconds)."""
    from PIL import Image

    width, height = PAGE_SIZE
    frames = "".join(
        f'<iframe src="{page.as_uri()}" style="position:absolute;top:0;left:{index * width}px;'
        f'width:{width}px;height:{height}px;border:0"></iframe>'
        for index, page in enumerate(pages)
    )
    sheet, shot = folder / "sheet.html", folder / "sheet.png"
    sheet.write_text(f"<html><body style='margin:0'>{frames}</body></html>")
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # as root in a container
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width * len(pages)},{height}",
            "--virtual-time-budget=5000",  # let plotly draw before the picture is taken
            f"--screenshot={shot}",
            sheet.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    drawn = Image.open(shot)
    pictures = []
    for index in range(len(pages)):
        picture = io.BytesIO()
        drawn.crop((index * width, 0, (index + 1) * width, height)).save(picture, "PNG")
        pictures.append(picture.getvalue())
    return pictures


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_reports_draw_their_charts_in_a_browser_and_a_page_without_charts_shows_none(tmp_path: Path) -> None:
    """A run's report and a sweep's report, seen in Chromium: their header says what ran, their lines are drawn.

    A page without charts beside them has no coloured pixel: the check would catch a report that draws nothing.
    """
    run_page = write_load(measured(200, 3000), tmp_path / "load.html", {**ABOUT, "load": "fixed rate: 200 req/s"})
    text = run_page.read_text()
    for said in ("route", "session cookie", "fixed rate: 200 req/s", "kfdex", "date", "Latency distribution by percentile"):
        assert said in text
    result = sweep.run_sweep([100, 200, 300], 20.0, lambda rate: measured(rate, 25 * rate))
    sweep_page = write_sweep(result, tmp_path / "sweep.html", ABOUT)
    assert "Latency percentiles against offered rate" in sweep_page.read_text()
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body><h1>kfdex load</h1><p>text only</p></body></html>")

    run_picture, sweep_picture, blank_picture = screenshots([run_page, sweep_page, blank], tmp_path)
    assert coloured(run_picture) > 2000  # the lines are drawn, thick enough to see
    assert coloured(sweep_picture) > 2000
    assert coloured(blank_picture) == 0
