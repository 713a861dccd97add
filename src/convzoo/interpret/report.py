"""The pages ``convzoo explain`` writes: PNG figures and one self-contained HTML page (images inline as data URIs).

A :class:`Report` is a title and sections; a section holds text, figures (PNG bytes) and tables. ``write``
puts every figure beside the page as a PNG and the page itself as ``index.html``, each file atomically.
Figures are drawn with Pillow (maps, images) or matplotlib's Agg backend (plots), imported when used.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from convzoo.core.files import atomic_write_bytes, atomic_write_text

__all__ = ["Figure", "Section", "Report", "image_png", "heatmap_png", "plot_png", "figure_png", "image_to_uint8"]


def image_to_uint8(image: Tensor) -> np.ndarray:
    """An image ``(C, H, W)`` (any range) as ``(H, W, 3)`` uint8, min–max scaled."""
    image = image.detach().float().cpu()
    image = image.expand(3, *image.shape[1:]) if image.shape[0] == 1 else image[:3]
    low, high = image.min(), image.max()
    scaled = (image - low) / (high - low).clamp_min(1e-12)
    return (scaled.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)


def _png(array: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    from PIL import Image

    image = Image.fromarray(array)
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_png(image: Tensor, scale: int = 1) -> bytes:
    """An image ``(C, H, W)`` as PNG bytes, min–max scaled, enlarged ``scale`` times with nearest pixels."""
    array = image_to_uint8(image)
    return _png(array, (array.shape[1] * scale, array.shape[0] * scale))


def heatmap_png(
    values: Tensor,
    *,
    cmap: str = "inferno",
    background: Tensor | None = None,
    alpha: float = 0.6,
    size: tuple[int, int] | None = None,
    symmetric: bool = False,
) -> bytes:
    """A 2-D map ``(H, W)`` through a matplotlib colour map, optionally blended over an image ``(C, H', W')``.

    The map is resized to the background's size (or ``size`` = (width, height)); ``symmetric`` centres the
    colour scale on zero (for signed maps, with a diverging colour map such as ``"coolwarm"``).
    """
    import matplotlib

    values = values.detach().double().cpu()
    if symmetric:
        bound = values.abs().max().clamp_min(1e-12)
        scaled = (values / bound + 1) / 2
    else:
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low).clamp_min(1e-12)
    if background is not None:
        size = (background.shape[-1], background.shape[-2])
    if size is not None:
        scaled = torch.nn.functional.interpolate(scaled[None, None], size=(size[1], size[0]), mode="bilinear")[0, 0]
    colours = matplotlib.colormaps[cmap](scaled.numpy())[..., :3]  # (H, W, 3) in [0, 1]
    if background is not None:
        colours = alpha * colours + (1 - alpha) * image_to_uint8(background) / 255.0
    return _png((colours * 255).round().astype(np.uint8))


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def plot_png(draw: Any, figsize: tuple[float, float] = (5.0, 3.5)) -> bytes:
    """Call ``draw(axes)`` on a new Agg figure and return it as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=figsize)
    draw(axes)
    return figure_png(figure)


@dataclass
class Figure:
    caption: str
    png: bytes
    filename: str


@dataclass
class Section:
    heading: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Sequence[Sequence[object]]]] = field(default_factory=list)

    def figure(self, caption: str, png: bytes, filename: str | None = None) -> Figure:
        name = filename or re.sub(r"[^a-z0-9]+", "_", f"{self.heading} {caption}".lower()).strip("_")
        figure = Figure(caption, png, name if name.endswith(".png") else f"{name}.png")
        self.figures.append(figure)
        return figure

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.tables.append((headers, rows))


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
.figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:.85em;color:#555;max-width:24em}
img{image-rendering:pixelated;max-width:24em;border:1px solid #ddd}table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}th{background:#f3f3f3}p.meta{color:#555}"""


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


@dataclass
class Report:
    """A page of sections; ``write(folder)`` writes ``index.html`` and every figure as a PNG."""

    title: str
    meta: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, heading: str, text: str = "") -> Section:
        section = Section(heading, text)
        self.sections.append(section)
        return section

    def html(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        if self.meta:
            parts.append(f'<p class="meta">{html.escape(self.meta)}</p>')
        for section in self.sections:
            parts.append(f"<section><h2>{html.escape(section.heading)}</h2>")
            if section.text:
                parts.append(f"<p>{html.escape(section.text)}</p>")
            if section.figures:
                parts.append('<div class="figs">')
                for figure in section.figures:
                    uri = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
                    caption = html.escape(figure.caption)
                    parts.append(
                        f'<figure><img src="{uri}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
                    )
                parts.append("</div>")
            for headers, rows in section.tables:
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
                body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, folder: str | Path, page: str = "index.html") -> list[Path]:
        """Write every figure as a PNG and the page; returns the paths written, the page last."""
        folder = Path(folder)
        written = []
        names: set[str] = set()
        for section in self.sections:
            for figure in section.figures:
                if figure.filename in names:
                    raise ValueError(f"report: two figures are named {figure.filename!r}")
                names.add(figure.filename)
                written.append(atomic_write_bytes(folder / figure.filename, figure.png))
        written.append(atomic_write_text(folder / page, self.html()))
        return written
