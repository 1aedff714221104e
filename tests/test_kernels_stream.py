"""The streaming pieces of `lifepalette analyze`: the compiled PPG path, the streaming resampler and the chunked
table reader each equal their whole-at-once counterparts exactly, wherever the chunks happen to be cut."""

from __future__ import annotations

import numpy as np
import pytest
from lifepalette.commands import analyze_table
from lifepalette.commands.analyze_table import TableReader
from lifepalette.errors import UsageError
from lifepalette.kernels import fast_ppg
from lifepalette.kernels.fast_ppg import StreamPpg
from lifepalette.kernels.resample import Resampler, resample
from lifepalette.kernels.wasm import TranslationError, compile_module

from protocol.kernels import ppg as ppg_k


def _pulse(seconds: int, rate: int, seed: int) -> np.ndarray:
    """Raw counts with beats, noise, a step, a dropout and a saturated stretch (auto-range up and down)."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * rate) / rate
    hr = 62 + 8 * np.sin(t / 40)
    phase = np.cumsum(hr / 60 / rate) % 1
    x = 30000 + 6000 * np.exp(-0.5 * ((phase - 0.2) / 0.07) ** 2) + rng.standard_normal(t.size) * 250
    x[int(0.3 * x.size):int(0.3 * x.size) + 3 * rate] += 90000
    x[int(0.5 * x.size):int(0.5 * x.size) + 2 * rate] = 0
    x[int(0.7 * x.size):] = 30000 + (x[int(0.7 * x.size):] - 30000) / 40  # a weak pulse: the shift comes down
    return np.clip(x, 0, 300000).astype(np.int64)


def _reference(x: np.ndarray, rate: int, invert: bool) -> tuple[list, list]:
    """The badge's streaming PpgKernel (pure Python), sample by sample, one tick per second."""
    kernel = ppg_k.PpgKernel(rate, invert)
    beats: list = []
    kernel.on_beat = lambda p, frac, n: beats.append((p, frac))
    seconds = []
    for s in range(x.size // rate):
        for v in x[s * rate:(s + 1) * rate].tolist():
            kernel.push(v)
        kernel.tick()
        b = kernel.beats
        seconds.append((b.hr_bpm(), b.rmssd_ms(), bool(b.hr_valid())))
    return seconds, beats


@pytest.mark.parametrize("rate,invert,feeds", [(64, False, [1, 7, 300]), (25, True, [13, 2, 1]),
                                               (128, False, [3]), (50, False, [5, 1])])
def test_compiled_ppg_equals_the_badge_kernel_for_any_feed_size(monkeypatch, rate, invert, feeds):
    monkeypatch.setattr(fast_ppg, "SECONDS", 11)  # several compiled calls per feed as well
    seconds = 150
    x = _pulse(seconds, rate, rate)
    if invert:
        x = 0x3FFFF - x
    want, want_beats = _reference(x, rate, invert)
    beats: list = []
    ppg = StreamPpg(rate, invert, lambda p, frac: beats.append((p, frac)))
    got = []
    at, i = 0, 0
    while at < seconds:
        n = min(feeds[i % len(feeds)], seconds - at)
        ppg.feed(x[at * rate:(at + n) * rate])
        for _ in range(n):
            ppg.tick()
            got.append((ppg.beats.hr_bpm(), ppg.beats.rmssd_ms(), ppg.beats.hr_valid()))
        at += n
        i += 1
    assert got == want
    assert [(p & ppg_k.M20, f) for p, f in beats] == want_beats
    assert len(want_beats) > seconds // 2 and any(hr for hr, _, _ in want) and any(ok for _, _, ok in want)


def test_beat_indices_keep_counting_past_the_kernels_20_bit_counter():
    rate = 25
    seconds = (1 << 20) // rate + 200
    t = np.arange(seconds * rate) / rate
    x = (30000 + 6000 * np.exp(-0.5 * (((t % 1.0) - 0.2) / 0.07) ** 2)).astype(np.int64)
    beats: list = []
    ppg = StreamPpg(rate, False, lambda p, frac: beats.append(p + frac / 256))
    ppg.feed(x)
    for _ in range(seconds):
        ppg.tick()
    peaks = np.array(beats)
    assert peaks[-1] > (1 << 20) and ppg.beats.hr_bpm() == 60
    assert np.allclose(np.diff(peaks), rate, atol=0.5)  # one beat a second, across the wrap too


def test_feeding_part_of_a_second_is_refused():
    with pytest.raises(ValueError):
        StreamPpg(64, False).feed(np.zeros(100, dtype=np.int64))


def _arith(a, b, out):
    """Python's integer semantics the compiled subset must keep."""
    out[0] = a // b
    out[1] = a % b
    out[2] = a >> 3
    out[3] = (a << 2) & 0xFFFF
    out[4] = a if a < b else b
    out[5] = 7 if a > 0 and not b < 0 or a == -5 else -7
    out[6] = (a ^ b) | 1
    out[7] = -a + ~b


def _arith_run(a, b, out):
    _arith(a, b, out)
    total = 0
    for i in range(2, 6):
        if i == 4:
            continue
        total += out[i]
    k = 0
    while True:
        k += 1
        if k >= 3:
            break
    return total * k


def test_translation_keeps_python_integer_semantics():
    import wasmtime

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, compile_module([_arith, _arith_run], pages=1)), [])
    run = inst.exports(store)["_arith_run"]
    mem = inst.exports(store)["memory"]
    view = np.ctypeslib.as_array(mem.data_ptr(store), shape=(mem.data_len(store),)).view(np.int32)
    for a, b in [(7, 2), (-7, 2), (7, -2), (-7, -2), (-5, 3), (0, 5), (123456, -1000), (-1, 1), (6, 3), (-6, 3)]:
        expected = [0] * 8
        want = _arith_run(a, b, expected)
        assert run(store, a, b, 0) == want, (a, b)
        assert view[:8].tolist() == expected, (a, b)


def _unsupported(x):
    return [x]


def test_a_construct_outside_the_subset_names_function_and_line():
    with pytest.raises(TranslationError, match=r"_unsupported \(line \d+.*List"):
        compile_module([_unsupported], pages=1)


@pytest.mark.parametrize("rate_in,rate_out", [(100, 64), (1000, 16), (64, 64), (30, 25), (97.3, 128), (10, 1),
                                              (2.5, 1)])
def test_resampler_equals_resample_for_any_chunks(rate_in, rate_out):
    rng = np.random.default_rng(int(rate_in * 10 + rate_out))
    for n in (1, 3, 17, 2000, 5003):
        x = rng.standard_normal(n) * 1000 + 40
        r = Resampler(rate_in, rate_out)
        parts = []
        at = 0
        while at < n:
            k = int(rng.integers(1, 300))
            parts.append(r.push(x[at:at + k]))
            at += k
        parts.append(r.finish())
        got = np.concatenate(parts)
        want = resample(x, rate_in, rate_out)
        assert got.shape == want.shape and np.array_equal(got, want), (n, rate_in, rate_out)


def _line_by_line(text: str, kind: str, column: int | None) -> np.ndarray:
    """The reader's rules applied to the whole text at once (the pre-streaming reader)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0]), None)
    cells = [[c.strip() for c in ln.split(delimiter)] if delimiter else ln.split() for ln in lines]
    picked = analyze_table.pick_columns(len(cells[0]), kind, column)
    rows = []
    for i, row in enumerate(cells):
        try:
            rows.append([float(row[c]) for c in picked])
        except ValueError:
            assert i == 0
    return np.array(rows)


def _read(tmp_path, text: str, kind: str = "ppg", column: int | None = None) -> np.ndarray:
    f = tmp_path / "t.csv"
    f.write_text(text)
    return np.concatenate(list(TableReader(f, kind, column).chunks()))


@pytest.mark.parametrize("chunk", [7, 64, 1000, 1 << 20])
def test_table_reader_equals_the_line_by_line_reader_wherever_the_pieces_are_cut(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(analyze_table, "CHUNK_CHARS", chunk)
    rng = np.random.default_rng(chunk)
    v = rng.standard_normal((400, 3)) * 1000
    plain = "\n".join(f"2016-11-24 13:58:{i % 60:02d}.5,{a:.4f},{b:.6e},{c:.1f}" for i, (a, b, c) in enumerate(v))
    odd = plain.replace("\n", "\n\n# note\n", 3).replace(",", " , ", 40) + "\n  \n"
    for text in ("time,a,b,c\n" + plain, plain + "\n", "# head\n\ntime,a,b,c\n" + odd):
        for kind, column in (("ppg", None), ("ppg", 1), ("acc", None), ("eda", 2)):
            assert np.array_equal(_read(tmp_path, text, kind, column), _line_by_line(text, kind, column))
    spaced = "\n".join(f"{a:.3f}\t{b:.3f}" for a, b, _ in v) + "\n"
    assert np.array_equal(_read(tmp_path, spaced), _line_by_line(spaced, "ppg", None))
    blank = "value\n" + "\n".join(f"  {a:.3f}   {b:.2f}" if i % 50 == 0 else f"{a:.3f} {b:.2f}"
                                  for i, (a, b, _) in enumerate(v))
    with pytest.raises(UsageError, match="columns where"):  # the header has one cell
        _read(tmp_path, blank)
    ws = "\n".join(f"{a:.3f}  {b:.2f}" for a, b, _ in v)
    assert np.array_equal(_read(tmp_path, ws, "ppg", 0), _line_by_line(ws, "ppg", 0))


@pytest.mark.parametrize("chunk", [5, 50, 1 << 20])
def test_table_reader_names_the_bad_line_in_any_piece(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(analyze_table, "CHUNK_CHARS", chunk)
    good = [f"{i},{i * 0.5}" for i in range(300)]
    for bad, message in (("5,abc", "not a number"), ("5", "1 columns where the first row has 2"),
                         ("5,6,7", "3 columns")):
        lines = good[:250] + [bad] + good[250:]
        with pytest.raises(UsageError, match=f"t.csv:251: {message}"):
            _read(tmp_path, "\n".join(lines))
    with pytest.raises(UsageError, match="t.csv:302: not a number"):  # header, 300 rows, then a word
        _read(tmp_path, "a,b\n" + "\n".join(good) + "\nx,y\n")
