"""The simulator's plots (lifepalette.sim.plots on lifepalette.sim.plotkit): the pixels say what the data say."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
from lifepalette.sim import plotkit as pk
from lifepalette.sim import plots
from lifepalette.sim.run import simulate
from PIL import Image


@pytest.fixture(scope="module")
def result():
    return simulate(24, 8, seed=3, show_progress=False)


def pixels(canvas: pk.Canvas) -> np.ndarray:
    return np.asarray(canvas.to_image())


def at(canvas_pixels: np.ndarray, xy: tuple[float, float]) -> np.ndarray:
    return canvas_pixels[int(xy[1]), int(xy[0])]


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* of sRGB colours."""
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def test_the_colour_map_runs_from_dark_blue_to_yellow_ever_lighter():
    cmap = pk.COLOUR_MAP.astype(float)
    steps = np.diff(lightness(cmap))
    assert np.all(steps >= 0)  # never darker (neighbours may round to the same uint8 colour)
    assert np.all(np.diff(lightness(cmap[::8])) > 0.5)  # and clearly lighter every few entries
    assert cmap[0, 2] > cmap[0, 0] and cmap[0, 2] > cmap[0, 1]  # blue first
    assert min(cmap[-1, :2]) > 2 * cmap[-1, 2]  # yellow last
    mid = cmap[128]
    assert max(mid) - min(mid) < 20  # grey in the middle


def test_colour_map_clips_the_ends_and_paints_nan_as_background():
    got = pk.colour_map(np.array([0.0, 0.8, 0.4, -1.0, 5.0, np.nan]), 0.0, 0.8, background=(1, 2, 3))
    assert (got[0] == pk.COLOUR_MAP[0]).all() and (got[1] == pk.COLOUR_MAP[255]).all()
    assert (got[2] == pk.COLOUR_MAP[128]).all()
    assert (got[3] == pk.COLOUR_MAP[0]).all() and (got[4] == pk.COLOUR_MAP[255]).all()
    assert tuple(got[5]) == (1, 2, 3)


def test_nice_ticks_are_round_steps_covering_the_range():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        lo = float(rng.uniform(-1, 1) * 10.0 ** rng.integers(-4, 5))
        hi = lo + float(rng.uniform(0.01, 10) * 10.0 ** rng.integers(-4, 5))
        most = int(rng.integers(3, 10))
        ticks = pk.nice_ticks(lo, hi, most)
        assert 2 <= len(ticks) <= most
        step = ticks[1] - ticks[0]
        mantissa = step / 10.0 ** math.floor(math.log10(step * (1 + 1e-6)))
        assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5, 10)) < 1e-5, (lo, hi, ticks)
        assert np.allclose(np.diff(ticks), step, rtol=1e-6)
        tol = 1e-9 * max(abs(lo), abs(hi), step)
        assert lo - tol <= ticks[0] < lo + step + tol and hi - step - tol < ticks[-1] <= hi + tol
    assert pk.nice_ticks(0, 60, 8) == [0, 10, 20, 30, 40, 50, 60]
    assert pk.nice_ticks(0, 1, 6) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert pk.nice_ticks(-0.05, 0.2, 6) == [-0.05, 0.0, 0.05, 0.1, 0.15, 0.2]


def test_tick_labels_use_the_fewest_decimals_that_are_exact():
    assert pk.tick_labels([0, 10, 20]) == ["0", "10", "20"]
    assert pk.tick_labels([-0.05, 0.0, 0.05, 0.1]) == ["-0.05", "0.00", "0.05", "0.10"]
    assert pk.tick_labels([0.0, 0.2, 0.4]) == ["0.0", "0.2", "0.4"]
    assert pk.tick_labels([-1e-17, 0.5]) == ["0.0", "0.5"]  # no "-0.0"
    assert pk.tick_labels([-1e-12, 10.0]) == ["0", "10"]


def test_palette_cells_are_the_timelines_colours(result):
    timeline = result.palette_timeline
    canvas = plots._palette(result)
    ax = canvas.axes[0]
    img = pixels(canvas)
    gids, cells = plots.palette_cells(timeline)
    assert len(gids) >= 2 and cells.shape == (len(gids) + 1, len(timeline), 3)
    width = (timeline[-1]["t"] + 1) / 60.0 / len(timeline)
    for j, snap in enumerate(timeline):
        x = (j + 0.5) * width
        assert tuple(at(img, ax.canvas_xy(x, 0))) == tuple(snap["cove"]["rgb"])
        by_id = {g["group"]: g["rgb"] for g in snap["groups"]}
        for i, gid in enumerate(gids):
            assert tuple(at(img, ax.canvas_xy(x, i + 1))) == tuple(by_id[gid])


def test_heatmap_cells_follow_the_colour_map_and_nan_stays_background(result):
    ids, truth, excess, xs, ys = plots.coupling_matrices(result)
    assert len(ids) == 24 < plots.MAX_MATRIX_WEARERS
    assert np.isfinite(truth).any() and np.isnan(truth).any()
    canvas = plots._synchrony(result)
    img = pixels(canvas)
    truth_ax, _bar, excess_ax = canvas.axes[:3]
    for ax, values, vmin, vmax in ((truth_ax, truth, 0.0, 0.8), (excess_ax, excess, -0.05, 0.2)):
        expected = pk.colour_map(values, vmin, vmax)
        for row in range(len(ids)):
            for col in range(len(ids)):
                assert tuple(at(img, ax.canvas_xy(col, row))) == tuple(expected[row, col])
                if np.isnan(values[row, col]):
                    assert tuple(at(img, ax.canvas_xy(col, row))) == pk.WHITE


def test_a_colorbar_runs_from_vmin_at_the_bottom_to_vmax_at_the_top():
    canvas = pk.Canvas(100, 200)
    bar = pk.colorbar(canvas, 10, 10, 30, 190, -0.05, 0.2, [0.0, 0.1, 0.2])
    img = pixels(canvas).astype(float)
    x = int(bar.canvas_xy(0.5, 0)[0])
    column = img[bar.box[1] // bar.s + 1:bar.box[3] // bar.s - 1, x]  # top to bottom, inside the frame
    assert np.abs(column[0] - pk.COLOUR_MAP[255]).max() <= 3 and np.abs(column[-1] - pk.COLOUR_MAP[0]).max() <= 3
    assert np.all(np.diff(lightness(column[::-1])) >= 0)
    # a tick label right of the bar at 0.1: dark pixels there, none left of the bar
    x, y = bar.canvas_xy(1.0, 0.1)
    assert (img[int(y) - 4:int(y) + 4, int(x) + 6:int(x) + 30] < 100).any()
    assert (img[:, :8] == 255).all()


def test_box_plot_median_and_quartiles_sit_where_the_data_put_them():
    canvas = pk.Canvas(200, 400)
    ax = canvas.add_axes(20, 20, 180, 380, (0.5, 3.5), (0.0, 40.0))
    data = [np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 30, np.nan]), np.array([]), np.full(3, np.nan)]
    stats = ax.boxplot(data, [1, 2, 3])
    assert stats[1] == {} and stats[2] == {}
    s = stats[0]
    q1, med, q3 = np.percentile(data[0][:-1], (25, 50, 75))
    assert (s["q1"], s["median"], s["q3"]) == (q1, med, q3)
    assert s["high"] == 9 and s["low"] == 1 and s["outliers"] == 1  # 30 is past q3 + 1.5 IQR
    img = pixels(canvas).astype(int)
    x = int(ax.canvas_xy(1.2, 0)[0])  # inside the box, off the whisker and the caps
    column = img[:, x].copy()
    column[:22] = column[378:] = 255  # the axes' frame
    ink = column.sum(axis=1) < 700
    orange = np.flatnonzero(ink & (column[:, 0] - column[:, 2] > 60))
    dark = np.flatnonzero(ink & (column[:, 0] - column[:, 2] <= 60))
    assert len(orange) and abs(orange.mean() - ax.canvas_xy(1, med)[1]) <= 1.0
    y1, y3 = ax.canvas_xy(1, q1)[1], ax.canvas_xy(1, q3)[1]
    assert len(dark) and all(min(abs(d - y1), abs(d - y3)) <= 1.5 for d in dark)  # the box's edges, nothing else
    assert abs(dark[dark > (y1 + y3) / 2].mean() - y1) <= 1.0 and abs(dark[dark < (y1 + y3) / 2].mean() - y3) <= 1.0
    # the outlier's circle around its value on the box's centre line
    cx, cy = ax.canvas_xy(1, 30)
    assert (img[int(cy) - 5:int(cy) + 6, int(cx) - 5:int(cx) + 6].sum(axis=2) < 300).any()
    # nothing drawn for the empty and the all-NaN set
    for pos in (2, 3):
        px = int(ax.canvas_xy(pos, 0)[0])
        assert (img[25:375, px - 8:px + 8] == 255).all()


def test_a_scatter_of_n_points_marks_n_places():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    gx, gy = np.meshgrid(np.arange(5, 100, 10), np.arange(5, 100, 10))
    keep = rng.random(gx.size) < 0.6
    xs, ys = gx.ravel()[keep].astype(float), gy.ravel()[keep].astype(float)
    canvas = pk.Canvas(300, 300)
    ax = canvas.add_axes(20, 20, 280, 280, (0, 100), (0, 100))
    xs_all = np.concatenate([xs, [np.nan, 50.0]])
    ys_all = np.concatenate([ys, [50.0, 500.0]])  # a NaN and a point beyond the limits: not drawn
    drawn = ax.scatter(xs_all, ys_all, (0, 0, 255), radius=3, alpha=1.0)
    assert drawn == len(xs) + 1  # the point beyond the limits is counted but clipped
    img = pixels(canvas)
    inside = img[22:278, 22:278].astype(int)
    blue = (inside[:, :, 2] > 200) & (inside[:, :, 0] < 150)
    _labels, n = ndimage.label(blue)
    assert n == len(xs)
    for x, y in zip(xs, ys, strict=True):
        assert tuple(at(img, ax.canvas_xy(x, y))) == (0, 0, 255)


def test_overlapping_dots_read_darker_than_one():
    canvas = pk.Canvas(100, 100)
    ax = canvas.add_axes(0, 0, 100, 100, (0, 10), (0, 10))
    ax.scatter(np.array([2.0, 7.0, 7.0, 7.0]), np.array([5.0, 5.0, 5.0, 5.0]), (0, 0, 200), radius=3, alpha=0.5)
    img = pixels(canvas).astype(int)
    one, three = at(img, ax.canvas_xy(2, 5)), at(img, ax.canvas_xy(7, 5))
    assert one[0] == pytest.approx(255 * 0.5, abs=2) and three[0] == pytest.approx(255 * 0.125, abs=2)


def test_titles_and_labels_put_ink_where_they_belong(result):
    canvas = plots._palette(result)
    img = pixels(canvas)
    ax = canvas.axes[0]
    top = ax.box[1] // ax.s
    title_band = img[2:top - 2]
    ink = np.argwhere(title_band.sum(axis=2) < 384)
    assert len(ink) > 50
    assert abs(ink[:, 1].mean() - canvas.width * 0.55) < 80  # centred over the axes
    # the "minute" label under the tick labels
    assert (img[canvas.height - 28:canvas.height - 4].sum(axis=2) < 384).sum() > 20


def test_the_legend_goes_to_a_corner_without_data():
    canvas = pk.Canvas(300, 200)
    ax = canvas.add_axes(10, 10, 290, 190, (0, 10), (0, 1))
    x = np.linspace(0, 10, 200)
    ax.plot(x, np.where(x > 5, 0.95, 0.05), (200, 0, 0), label="a step up")  # fills upper right and lower left
    ax.plot(x, np.where(x > 5, 0.9, 0.1), (0, 0, 200), label="another")
    ax.legend()
    img = pixels(canvas).astype(int)
    frame = (np.abs(img - pk.LIGHT_GREY).sum(axis=2) < 10)
    rows, cols = np.nonzero(frame)
    assert len(rows) and rows.mean() < 100 and cols.mean() < 150  # upper left: the free corner


def test_an_ylabel_is_turned_and_left_of_the_axes():
    canvas = pk.Canvas(200, 300)
    ax = canvas.add_axes(60, 10, 190, 290, (0, 1), (0, 1))
    ax.ylabel("a long vertical label", offset=30)
    img = pixels(canvas)
    ink = np.argwhere(img[:, :60].sum(axis=2) < 384)
    assert ink[:, 0].max() - ink[:, 0].min() > 3 * (ink[:, 1].max() - ink[:, 1].min())  # taller than wide


def _valid_pngs(out, names):
    for name in names:
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size[0] > 500


def test_the_same_input_gives_the_same_bytes(result, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    names = plots.write_plots(result, a)
    assert names == ["palette.png", "synchrony.png", "trajectories.png", "groups.png"]
    plots.write_plots(result, b)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    _valid_pngs(a, names)


def test_a_session_too_short_for_a_trajectory_says_so(tmp_path):
    short = simulate(4, 1, seed=1, show_progress=False)
    assert not any(w.get("trajectory") for w in short.scores["wearers"].values())
    canvas = plots._trajectories(short)
    img = pixels(canvas)
    ax2 = canvas.axes[1]
    cx, cy = ax2.canvas_xy(0.5 * ax2.xlim[1], 0.5)
    assert (img[int(cy) - 8:int(cy) + 8, int(cx) - 60:int(cx) + 60].sum(axis=2) < 384).sum() > 50
    _valid_pngs(tmp_path, plots.write_plots(short, tmp_path))


def test_no_scored_second_one_group_and_no_pairs_still_draw(result, tmp_path):
    c = result.cohort
    one_group = dataclasses.replace(c, demographic=np.zeros_like(c.demographic), pairs=[], coupling=np.zeros(0))
    fairness = {"reference": result.report["fairness"]["groups"]["reference"]}
    report = {**result.report, "fairness": {**result.report["fairness"], "groups": fairness}}
    blank = dataclasses.replace(result, cohort=one_group, ours=np.full_like(result.ours, np.nan), report=report,
                                palette_timeline=[])
    data, _labels = plots.group_errors(blank)
    assert all(len(d) == 0 for d in data)
    _valid_pngs(tmp_path, plots.write_plots(blank, tmp_path))


def test_without_freetype_the_bitmap_font_still_writes_the_plots(result, tmp_path, monkeypatch):
    from PIL import ImageFont
    from PIL._util import DeferredError

    monkeypatch.setattr(ImageFont, "core", DeferredError(ImportError("no FreeType")))
    monkeypatch.setattr(pk, "_FONTS", {})
    with pytest.raises(ImportError):
        ImageFont.load_default(size=12)  # what the kit falls back from
    f, enlarge = pk.font(24)
    assert not isinstance(f, ImageFont.FreeTypeFont) and enlarge == 2
    canvas = pk.Canvas(200, 60)
    canvas.text(100, 30, "bitmap", va="center", ha="center")
    assert (pixels(canvas).sum(axis=2) < 384).sum() > 20
    _valid_pngs(tmp_path, plots.write_plots(result, tmp_path))


def test_png_encoding_is_lossless_and_readable_by_pillow(result):
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)  # every byte difference, wrapping modulo 256
    plot = np.asarray(plots._groups(result).to_image())
    for rgb in (noise, plot, np.zeros((1, 1, 3), np.uint8)):
        data = pk.encode_png(rgb, plots.PNG_COMPRESS_LEVEL)
        with Image.open(io.BytesIO(data)) as back:
            back.load()
            assert back.format == "PNG" and back.mode == "RGB"
            assert np.array_equal(np.asarray(back), rgb)
