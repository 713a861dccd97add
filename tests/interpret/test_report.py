"""The report page: self-contained HTML (images inline), PNGs beside it, and a real browser renders it."""

from __future__ import annotations

import base64
import re

import torch

from convzoo.interpret.report import Report, heatmap_png, image_png
from tests.interpret.browser import assert_renders, needs_chromium


def _report() -> Report:
    report = Report("a <test> page", "meta & more")
    section = report.section("Maps", "text with <b>markup</b>")
    section.figure("image", image_png(torch.rand(3, 8, 8), scale=2))
    section.figure("heat", heatmap_png(torch.randn(4, 4), background=torch.rand(1, 8, 8)))
    section.table(("a", "b"), [("x<y", 0.123456789), ("z", 3)])
    return report


def test_page_is_self_contained_and_escaped(tmp_path):
    written = _report().write(tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert written[-1] == tmp_path / "index.html" and len(written) == 3
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 2 and all(base64.b64decode(u).startswith(b"\x89PNG") for u in uris)
    assert base64.b64decode(uris[0]) == (tmp_path / "maps_image.png").read_bytes()
    assert "<b>" not in page and "&lt;b&gt;" in page and "a &lt;test&gt; page" in page and "0.1235" in page
    assert not re.search(r'src="(?!data:)', page)  # nothing fetched from elsewhere


@needs_chromium
def test_page_renders_in_chromium(tmp_path):
    _report().write(tmp_path)
    result = assert_renders(tmp_path / "index.html", min_images=2)
    assert result["title"] == "a <test> page" and result["sizes"][0] == [16, 16]


@needs_chromium
def test_the_browser_check_catches_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>t</title></head><body><img alt="bad" src="data:image/png;base64,AAAA">'
        "<script>undefinedFunction()</script></body></html>"
    )
    from tests.interpret.browser import render

    result = render(page)
    assert result["failed"] == ["bad"] and result["errors"] and result["console_errors"]
