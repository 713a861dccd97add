"""Render a report page in headless Chromium and say what it saw: images decoded, script and console errors.

The page is copied with a small script appended that, after the ``load`` event, writes into the DOM how many
``<img>`` elements there are and which failed to decode; ``--dump-dom`` prints that DOM and
``--enable-logging=stderr`` prints the console. No dependency beyond Debian's ``chromium``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install -y chromium)"
)

_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  // after "load" every <img> has loaded or failed: a decoded one has a non-zero natural size
  const images = Array.from(document.images);
  const bad = images.filter(i => !(i.complete && i.naturalWidth > 0));
  const result = {images: images.length, failed: bad.map(i => i.alt),
    sizes: images.map(i => [i.naturalWidth, i.naturalHeight]), errors: window.__errors, title: document.title};
  const node = document.createElement("pre");
  node.id = "__probe"; node.textContent = JSON.stringify(result);
  document.body.appendChild(node);
});
</script>"""


def render(page: Path, timeout: float = 60.0) -> dict:
    """What Chromium saw on ``page``: ``{"images", "failed", "sizes", "errors", "title", "console_errors"}``."""
    html = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / page.name
        # the probe's error listener goes first so it sees errors of the page's own scripts
        probe.write_text(html.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
            "--dump-dom", probe.as_uri(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    match = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise AssertionError(f"chromium rendered no probe result (exit {done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(
        match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    result["console_errors"] = [
        line for line in done.stderr.splitlines() if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)
    ]
    return result


def assert_renders(page: Path, min_images: int = 1) -> dict:
    """The page loads in Chromium, every image decodes to a non-empty bitmap, and nothing is logged as an error."""
    result = render(page)
    assert result["images"] >= min_images, result
    assert result["failed"] == [], result
    assert all(w > 0 and h > 0 for w, h in result["sizes"]), result
    assert result["errors"] == [] and result["console_errors"] == [], result
    return result
