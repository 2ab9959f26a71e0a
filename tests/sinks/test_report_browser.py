"""The report in a real browser: headless Chromium renders the page with its plots."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from crds_async.sinks.report import PAGE, PLOTS
from tests.conftest import CORPUS
from tests.sinks.reporting import run_with_sinks
from tests.sinks.test_report import png_size

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian package chromium; "
                                                         ".ci/run installs it)")


def chromium(profile, *args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", *(["--no-sandbox"] if os.geteuid() == 0 else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def colourful(png) -> float:
    """The share of a screenshot's pixels that are clearly coloured (the plots' colours; the
    page's own text and tables are black, white and grey)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))[..., :3]
    return float(((pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.25).mean())


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    sample = sorted((CORPUS / "hst").glob("*.fits"))[::4]
    run_with_sinks(sample, context="hst_0729.pmap", old_context="hst_0700.pmap", report=str(out / "report"))
    return out / "report"


def test_chromium_renders_the_page_with_its_images(report, tmp_path):
    url = (report / PAGE).as_uri()
    dom = chromium(tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Dom()
    parsed.feed(dom.stdout)
    assert parsed.images == list(PLOTS)
    for src in parsed.images:
        assert min(png_size(report / src)) >= 150
    shot = tmp_path / "shot.png"
    run = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1800", url)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert png_size(shot) == (1200, 1800)
    # the same page without its PNGs beside it: the images are what colours the screenshot
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(report / PAGE, bare / PAGE)
    bare_shot = tmp_path / "bare.png"
    chromium(tmp_path / "profile", f"--screenshot={bare_shot}", "--window-size=1200,1800", (bare / PAGE).as_uri())
    assert colourful(bare_shot) < 0.002 < 0.02 < colourful(shot)
