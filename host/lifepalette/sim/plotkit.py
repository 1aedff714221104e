"""A small plotting kit on Pillow for the simulator's PNG plots: a canvas, axes with a data -> pixel transform, round
tick steps, lines, dots, bars, nearest-neighbour images, box plots, colour bars, legends and text.

Why not matplotlib: importing it and drawing four figures took about 1.2 s CPU of a 1000-wearer run, longer than the
Parquet feature table; these plots need a few dozen primitives that Pillow draws in C.

Everything is drawn at SCALE times the output size and averaged down when saved: Pillow's lines, circles and polygon
edges are not antialiased, and a box average of 2 x 2 pixels is the cheapest antialiasing there is. Coordinates given
to the canvas and to text are output pixels; each Axes draws its data on its own layer, so nothing a line or a dot
draws can spill outside the frame (values beyond the limits are cut off, as in matplotlib, never pinned to the edge).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SCALE = 2
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (128, 128, 128)
LIGHT_GREY = (200, 200, 200)
Colour = tuple[int, int, int]

# An ordered map for heatmaps, dark blue -> grey -> yellow, its lightness rising all the way (a larger value is always
# a lighter cell, in greyscale too; blue against yellow is the contrast red-green colour blindness keeps)
COLOUR_MAP_ANCHORS = np.array([(18, 32, 92), (66, 78, 118), (126, 126, 126), (186, 174, 98), (250, 228, 64)], float)
COLOUR_MAP = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(COLOUR_MAP_ANCHORS)), channel)
                       for channel in COLOUR_MAP_ANCHORS.T], axis=1).round().astype(np.uint8)


def colour_map(values: np.ndarray, vmin: float, vmax: float, background: Colour = WHITE) -> np.ndarray:
    """RGB (uint8) of each value on COLOUR_MAP between vmin and vmax (clipped to the ends); NaN gets the background."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    idx = np.clip((np.where(finite, values, vmin) - vmin) / (vmax - vmin) * 255.0 + 0.5, 0, 255).astype(np.intp)
    rgb = COLOUR_MAP[idx]
    rgb[~finite] = background
    return rgb


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Ticks at a round step (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi], at most max_ticks of them, the
    smallest such step: the first tick lies within one step of lo and the last within one step of hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [lo]
    span = hi - lo
    magnitude = 10.0 ** math.floor(math.log10(span / max(1, max_ticks - 1)))
    for step in (m * magnitude for m in (1, 2, 2.5, 5, 10, 20)):
        first = math.ceil(lo / step - 1e-9)
        last = math.floor(hi / step + 1e-9)
        if last - first + 1 <= max_ticks:
            return [round(k * step, 12) + 0.0 for k in range(first, last + 1)]
    return [lo, hi]  # unreachable: a step of 20 magnitudes leaves at most max_ticks ticks


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """The ticks with the fewest decimals that tell them apart exactly (0.05 -> "0.05", 10.0 -> "10")."""
    for decimals in range(7):
        if all(abs(round(t, decimals) - t) < 1e-9 for t in ticks):
            break
    return [f"{round(t, decimals) + 0.0:.{decimals}f}" for t in ticks]  # + 0.0: no "-0.0"


def padded(lo: float, hi: float, fraction: float = 0.05) -> tuple[float, float]:
    """Limits with a margin either side (a flat range gets +-0.5), so edge points are not cut in half."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    pad = (hi - lo) * fraction
    return lo - pad, hi + pad


def encode_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """An 8-bit RGB PNG of a (rows, columns, 3) uint8 array, every row "Up"-filtered (its difference from the row
    above: plots are mostly flat, so mostly zeros). Why not Pillow's writer: it chooses a filter row by row, which
    took 36 ms against 14 ms for the four 1000-wearer plots (for 5 % smaller files), and its first save imports five
    image format plugins."""
    h, w, _ = rgb.shape
    rows = rgb.reshape(h, w * 3)
    filtered = np.empty((h, w * 3 + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up (the first row's "row above" is zeros: its own bytes)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG defines it

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits per channel, truecolour, no interlace
    data = zlib.compress(filtered.tobytes(), compress_level)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


_FONTS: dict[int, tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int]] = {}


def font(px: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int]:
    """Pillow's built-in font at px scaled pixels, and the factor its drawing must still be enlarged by: 1 for
    FreeType; without FreeType, Pillow's fixed bitmap font, enlarged to roughly the size asked for."""
    if px not in _FONTS:
        try:
            _FONTS[px] = ImageFont.load_default(size=px), 1
        except (ImportError, OSError):  # Pillow built without FreeType
            _FONTS[px] = ImageFont.load_default(), max(1, round(px / 11))
    return _FONTS[px]


def _line_height(f: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    return sum(f.getmetrics()) if isinstance(f, ImageFont.FreeTypeFont) else f.getbbox("Ag")[3]


def text_mask(s: str, px: int) -> Image.Image:
    """A greyscale mask of the text (lines centred on each other), in scaled pixels."""
    f, enlarge = font(px)
    lines = s.split("\n")
    height = _line_height(f)
    gap = height // 5
    widths = [f.getlength(line) for line in lines]
    mask = Image.new("L", (math.ceil(max(widths)) + 1, len(lines) * height + (len(lines) - 1) * gap))
    draw = ImageDraw.Draw(mask)
    for i, (line, width) in enumerate(zip(lines, widths, strict=True)):
        draw.text(((mask.width - width) / 2, i * (height + gap)), line, font=f, fill=255)
    if enlarge > 1:
        mask = mask.resize((mask.width * enlarge, mask.height * enlarge), Image.Resampling.NEAREST)
    return mask


def put_text(image: Image.Image, x: float, y: float, s: str, px: int, colour: Colour = BLACK, ha: str = "left",
             va: str = "top", rotate: bool = False) -> tuple[int, int, int, int]:
    """Text at scaled pixel (x, y), aligned by ha (left/center/right) and va (top/center/bottom); rotate turns it a
    quarter turn anticlockwise (a y-axis label). Returns the box it covers."""
    mask = text_mask(s, px)
    if rotate:
        mask = mask.transpose(Image.Transpose.ROTATE_90)
    left = round(x - {"left": 0, "center": mask.width / 2, "right": mask.width}[ha])
    top = round(y - {"top": 0, "center": mask.height / 2, "bottom": mask.height}[va])
    ImageDraw.Draw(image).bitmap((left, top), mask, fill=colour)
    return left, top, left + mask.width, top + mask.height


class Canvas:
    """A white RGB image of width x height output pixels, drawn at SCALE times that."""

    def __init__(self, width: int, height: int, scale: int | None = None) -> None:
        scale = scale or SCALE
        self.width, self.height, self.scale = width, height, scale
        self.image = Image.new("RGB", (width * scale, height * scale), WHITE)
        self.draw = ImageDraw.Draw(self.image)
        self.axes: list[Axes] = []

    def text(self, x: float, y: float, s: str, size: float = 12, **kw) -> tuple[int, int, int, int]:
        """Text at output pixel (x, y), size in output pixels; returns its box in output pixels."""
        box = put_text(self.image, x * self.scale, y * self.scale, s, round(size * self.scale), **kw)
        return tuple(v // self.scale for v in box)  # type: ignore[return-value]

    def add_axes(self, left: float, top: float, right: float, bottom: float, xlim: tuple[float, float],
                 ylim: tuple[float, float]) -> Axes:
        """Axes whose frame spans the given output pixels; ylim = (value at the bottom, value at the top), so a
        reversed ylim turns y downwards (a matrix's row 0 at the top)."""
        ax = Axes(self, left, top, right, bottom, xlim, ylim)
        self.axes.append(ax)
        return ax

    def to_image(self) -> Image.Image:
        for ax in self.axes:
            ax.finish()
        return self.image.reduce(self.scale) if self.scale > 1 else self.image

    def save(self, path: Path, compress_level: int = 1) -> None:
        path.write_bytes(encode_png(np.asarray(self.to_image()), compress_level))


class Axes:
    """A rectangle of the canvas with data limits. Data go on the axes' own layer (clipped to the frame); frame,
    ticks and labels go on the canvas around it."""

    def __init__(self, canvas: Canvas, left: float, top: float, right: float, bottom: float,
                 xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        s = canvas.scale
        self.canvas, self.s = canvas, s
        self.box = (round(left * s), round(top * s), round(right * s), round(bottom * s))
        self.xlim, self.ylim = xlim, ylim
        self.layer = Image.new("RGB", (self.box[2] - self.box[0], self.box[3] - self.box[1]), WHITE)
        self.draw = ImageDraw.Draw(self.layer)
        self._drawn: list[tuple[np.ndarray, np.ndarray]] = []  # layer pixels of the data, for the legend's place
        self._legend: list[tuple[str, Colour, str]] = []
        self._legend_spec: tuple[float, str] | None = None  # (size, loc) once legend() asks for one
        self._finished = False

    # -- data -> layer pixels (scaled, relative to the frame's top left)
    def x_px(self, x: np.ndarray | float) -> np.ndarray:
        x0, x1 = self.xlim
        return (np.asarray(x, dtype=np.float64) - x0) * (self.layer.width / (x1 - x0))

    def y_px(self, y: np.ndarray | float) -> np.ndarray:
        y0, y1 = self.ylim
        return (y1 - np.asarray(y, dtype=np.float64)) * (self.layer.height / (y1 - y0))

    def canvas_xy(self, x: float, y: float) -> tuple[float, float]:
        """Output pixel of a data point (for tests and annotations)."""
        return (self.box[0] + float(self.x_px(x))) / self.s, (self.box[1] + float(self.y_px(y))) / self.s

    # -- data
    def plot(self, x: np.ndarray, y: np.ndarray, colour: Colour, width: float = 1.0, label: str | None = None) -> None:
        """A polyline, broken where x or y is not finite."""
        px, py = self.x_px(x), self.y_px(y)
        ok = np.isfinite(px) & np.isfinite(py)
        self._drawn.append((px[ok], py[ok]))
        edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.view(np.int8), [0]))))
        w = max(1, round(width * self.s))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start == 1:
                self.draw.point((px[start], py[start]), fill=colour)
            else:
                self.draw.line(np.column_stack((px[start:stop], py[start:stop])).ravel().tolist(), fill=colour,
                               width=w)
        if label:
            self._legend.append((label, colour, "line"))

    def hline(self, y: float, colour: Colour = GREY, width: float = 1.0) -> None:
        self.plot(np.array(self.xlim), np.array([y, y]), colour, width)
        self._drawn.pop()  # a reference line is not data the legend must avoid

    def vline(self, x: float, colour: Colour = GREY, width: float = 1.0) -> None:
        self.plot(np.array([x, x]), np.array(self.ylim), colour, width)
        self._drawn.pop()

    def scatter(self, x: np.ndarray, y: np.ndarray, colour: Colour, radius: float = 2.0, alpha: float = 0.7) -> int:
        """Round dots, each with opacity alpha, composited like ink: where n dots overlap the colour covers
        1 - (1 - alpha)^n, so dense places read darker. Returns how many dots were drawn."""
        px, py = self.x_px(x), self.y_px(y)
        ok = np.isfinite(px) & np.isfinite(py)
        px, py = px[ok], py[ok]
        self._drawn.append((px, py))
        r = radius * self.s
        span = np.arange(-math.ceil(r), math.ceil(r) + 1)
        dy, dx = np.meshgrid(span, span, indexing="ij")
        disc = dx**2 + dy**2 <= r * r
        dx, dy = dx[disc], dy[disc]
        cols = (np.floor(px).astype(np.intp)[:, None] + dx).ravel()
        rows = (np.floor(py).astype(np.intp)[:, None] + dy).ravel()
        inside = (cols >= 0) & (cols < self.layer.width) & (rows >= 0) & (rows < self.layer.height)
        cols, rows = cols[inside], rows[inside]
        if not len(cols):
            return int(ok.sum())
        # composite only the pixels a dot covers: the rest of the layer stays as it is
        count = np.bincount(rows * self.layer.width + cols, minlength=self.layer.width * self.layer.height)
        hit = np.flatnonzero(count)
        pixels = np.array(self.layer).reshape(-1, 3)
        under = pixels[hit].astype(np.float32)
        cover = (1.0 - (1.0 - alpha) ** count[hit].astype(np.float32))[:, None]
        pixels[hit] = (under + cover * (np.array(colour, np.float32) - under) + 0.5).astype(np.uint8)
        self.layer.paste(Image.fromarray(pixels.reshape(self.layer.height, self.layer.width, 3)))
        return int(ok.sum())

    def bars(self, x: np.ndarray, heights: np.ndarray, width: float, colour: Colour, label: str | None = None) -> None:
        """Bars from 0 up to each height, width in data units, centred on x."""
        for xi, h in zip(np.asarray(x, float), np.asarray(heights, float), strict=True):
            left, right = self.x_px(xi - width / 2), self.x_px(xi + width / 2)
            top, base = sorted((float(self.y_px(h)), float(self.y_px(0.0))))
            if round(base) > round(top):  # a zero bar draws nothing
                self.draw.rectangle((round(left), round(top), round(right) - 1, round(base) - 1), fill=colour)
            gx, gy = np.meshgrid(np.linspace(left, right, 5), np.linspace(top, base, 5))
            self._drawn.append((gx.ravel(), gy.ravel()))
        if label:
            self._legend.append((label, colour, "patch"))

    def image(self, rgb: np.ndarray, extent: tuple[float, float, float, float]) -> None:
        """An RGB array (rows, columns, 3; uint8) stretched over extent = (x left, x right, y of row 0, y of the last
        row's far edge), each cell one flat colour (nearest neighbour)."""
        x0, x1, y0, y1 = extent
        left, right = round(float(self.x_px(x0))), round(float(self.x_px(x1)))
        top, bottom = sorted((round(float(self.y_px(y0))), round(float(self.y_px(y1)))))
        flipped = self.y_px(y0) > self.y_px(y1)  # row 0 belongs at the bottom
        if right <= left or bottom <= top or not rgb.size:
            return
        cells = Image.fromarray(np.ascontiguousarray(rgb[::-1] if flipped else rgb), "RGB")
        self.layer.paste(cells.resize((right - left, bottom - top), Image.Resampling.NEAREST), (left, top))

    def boxplot(self, datasets: Sequence[np.ndarray], positions: Sequence[float], width: float = 0.5,
                colour: Colour = BLACK, median_colour: Colour = (230, 120, 20)) -> list[dict[str, float]]:
        """Tukey box plots: box from the first to the third quartile, the median across it, whiskers to the furthest
        points within 1.5 IQR of the box, hollow circles beyond. Empty data sets draw nothing. Returns each box's
        numbers (empty dict for an empty set)."""
        stats = []
        for pos, data in zip(positions, datasets, strict=True):
            vals = np.asarray(data, dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            if not len(vals):
                stats.append({})
                continue
            q1, med, q3 = np.percentile(vals, (25, 50, 75))
            reach = 1.5 * (q3 - q1)
            inside = vals[(vals >= q1 - reach) & (vals <= q3 + reach)]
            low, high = float(inside.min()), float(inside.max())
            outliers = vals[(vals < low) | (vals > high)]
            left, mid, right = (float(self.x_px(v)) for v in (pos - width / 2, pos, pos + width / 2))
            cap_l, cap_r = (float(self.x_px(v)) for v in (pos - width / 4, pos + width / 4))
            y = {k: float(self.y_px(v)) for k, v in (("q1", q1), ("med", med), ("q3", q3), ("low", low),
                                                        ("high", high))}
            w = self.s
            self.draw.line((mid, y["q1"], mid, y["low"]), fill=colour, width=w)
            self.draw.line((mid, y["q3"], mid, y["high"]), fill=colour, width=w)
            for end in (y["low"], y["high"]):
                self.draw.line((cap_l, end, cap_r, end), fill=colour, width=w)
            self.draw.rectangle((left, y["q3"], right, y["q1"]), outline=colour, width=w)
            self.draw.line((left + w, y["med"], right - w, y["med"]), fill=median_colour, width=w)
            r = 3 * self.s
            for o in self.y_px(outliers):
                self.draw.ellipse((mid - r, o - r, mid + r, o + r), outline=colour, width=w)
            self._drawn.append((np.full(len(vals), mid), self.y_px(vals)))
            stats.append({"q1": q1, "median": med, "q3": q3, "low": low, "high": high, "outliers": len(outliers)})
        return stats

    def text(self, x: float, y: float, s: str, size: float = 10, **kw) -> None:
        """Text at a data point, drawn on the layer (inside the frame)."""
        put_text(self.layer, float(self.x_px(x)), float(self.y_px(y)), s, round(size * self.s), **kw)

    def text_at(self, fx: float, fy: float, s: str, size: float = 12, **kw) -> None:
        """Text at a fraction of the frame (0, 0 top left; 1, 1 bottom right)."""
        put_text(self.layer, fx * self.layer.width, fy * self.layer.height, s, round(size * self.s), **kw)

    def legend(self, size: float = 10, loc: str = "best") -> None:
        """The labelled lines and bars in a framed box in a corner; "best": the corner covering the fewest data."""
        self._legend_spec = (size, loc)

    # -- frame, ticks and labels on the canvas
    def xticks(self, ticks: Sequence[float], labels: Sequence[str] | None = None, size: float = 11,
               show_labels: bool = True) -> None:
        labels = tick_labels(ticks) if labels is None else labels
        c, s, (left, _top, _right, bottom) = self.canvas, self.s, self.box
        for t, label in zip(ticks, labels, strict=True):
            x = left + float(self.x_px(t))
            if not left - 1 <= x <= self.box[2] + 1:
                continue
            c.draw.line((x, bottom, x, bottom + 4 * s), fill=BLACK, width=s)
            if show_labels:
                put_text(c.image, x, bottom + 6 * s, label, round(size * s), ha="center")

    def yticks(self, ticks: Sequence[float], labels: Sequence[str] | None = None, size: float = 11,
               right_side: bool = False) -> None:
        labels = tick_labels(ticks) if labels is None else labels
        c, s, (left, top, right, bottom) = self.canvas, self.s, self.box
        for t, label in zip(ticks, labels, strict=True):
            y = top + float(self.y_px(t))
            if not top - 1 <= y <= bottom + 1:
                continue
            if right_side:
                c.draw.line((right, y, right + 4 * s, y), fill=BLACK, width=s)
                put_text(c.image, right + 6 * s, y, label, round(size * s), va="center")
            else:
                c.draw.line((left - 4 * s, y, left, y), fill=BLACK, width=s)
                put_text(c.image, left - 6 * s, y, label, round(size * s), ha="right", va="center")

    def title(self, s: str, size: float = 13) -> None:
        left, top, right, _bottom = self.box
        put_text(self.canvas.image, (left + right) / 2, top - 5 * self.s, s, round(size * self.s), ha="center",
                 va="bottom")

    def xlabel(self, s: str, offset: float = 22, size: float = 12) -> None:
        left, _top, right, bottom = self.box
        put_text(self.canvas.image, (left + right) / 2, bottom + offset * self.s, s, round(size * self.s),
                 ha="center")

    def ylabel(self, s: str, offset: float = 40, size: float = 12) -> None:
        """A label turned a quarter turn, its right edge offset output pixels left of the frame."""
        left, top, _right, bottom = self.box
        put_text(self.canvas.image, left - offset * self.s, (top + bottom) / 2, s, round(size * self.s), ha="right",
                 va="center", rotate=True)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._legend and self._legend_spec is not None:
            self._draw_legend(*self._legend_spec)
        left, top, right, bottom = self.box
        self.canvas.image.paste(self.layer, (left, top))
        self.canvas.draw.rectangle((left - self.s, top - self.s, right + self.s - 1, bottom + self.s - 1),
                                   outline=BLACK, width=self.s)

    def _draw_legend(self, size: float, loc: str) -> None:
        s, px = self.s, round(size * self.s)
        masks = [text_mask(label, px) for label, _c, _k in self._legend]
        row = max(m.height for m in masks) + 3 * s
        key = 22 * s
        width = key + 8 * s + max(m.width for m in masks) + 6 * s
        height = row * len(masks) + 6 * s
        margin = 6 * s
        corners = {"upper right": (self.layer.width - margin - width, margin), "upper left": (margin, margin),
                   "lower right": (self.layer.width - margin - width, self.layer.height - margin - height),
                   "lower left": (margin, self.layer.height - margin - height)}
        if loc == "best":
            loc = min(corners, key=lambda k: (self._covered(*corners[k], width, height), list(corners).index(k)))
        x, y = corners[loc]
        self.draw.rectangle((x, y, x + width, y + height), fill=WHITE, outline=LIGHT_GREY, width=s)
        for i, ((_label, colour, kind), mask) in enumerate(zip(self._legend, masks, strict=True)):
            cy = y + 3 * s + i * row + row / 2
            if kind == "line":
                self.draw.line((x + 6 * s, cy, x + key, cy), fill=colour, width=2 * s)
            else:
                self.draw.rectangle((x + 6 * s, cy - 4 * s, x + key, cy + 4 * s), fill=colour)
            tx, ty = round(x + key + 6 * s), round(cy - mask.height / 2)
            self.layer.paste(BLACK, (tx, ty, tx + mask.width, ty + mask.height), mask)

    def _covered(self, x: float, y: float, width: float, height: float) -> int:
        """How many drawn data points fall inside the box."""
        return sum(int(((px >= x) & (px <= x + width) & (py >= y) & (py <= y + height)).sum())
                   for px, py in self._drawn)


def colorbar(canvas: Canvas, left: float, top: float, right: float, bottom: float, vmin: float, vmax: float,
             ticks: Sequence[float], size: float = 11) -> Axes:
    """A vertical strip of COLOUR_MAP from vmin (bottom) to vmax (top), ticks on its right."""
    ax = canvas.add_axes(left, top, right, bottom, (0.0, 1.0), (vmin, vmax))
    ramp = colour_map(np.linspace(vmax, vmin, 256), vmin, vmax)[:, None, :]
    ax.image(ramp, (0.0, 1.0, vmax, vmin))
    ax.yticks(ticks, size=size, right_side=True)
    return ax
