"""The badge firmware as an ESP32 would run it, under the real MicroPython unix port: boot.py then main.py, with
the strict stand-ins for the esp32 port's modules (firmware/hal/unix/fakes), at the badge's heap budget (96K),
restarting the interpreter whenever the badge resets. Faults are injected on demand (`FAULTS`); the run's outcome
is read from the badge's serial log.

Code in flash (the default): the badge ships a firmware image with its modules frozen (firmware/manifest.py), so
its bytecode costs no heap. Here every compiled module, firmware and stand-ins (C modules on the chip), runs in
place from a ROMFS image mounted at /rom, and a ballast leaves exactly the free heap a plain `-X heapsize=96K`
interpreter has (lp_rom.py). Code in RAM (`code_in_flash=False`, `--code-in-ram`, LP_CODE_IN_RAM=1): the .mpy
files on the file system, loaded into the heap, as `lifepalette flash` leaves a stock MicroPython badge.

Outcome and exit code: normal operation 0 (also after a logged reset and recovery), safe mode 3, a REPL prompt 4
(the run stops with the line `REPL reached`), anything else 1 (a boot loop, or a badge that stopped advertising).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lifepalette.errors import UsageError
from lifepalette.paths import FIRMWARE_DIR, REPO_ROOT, micropython_binary, mpy_cross_binary

FAKES_DIR = FIRMWARE_DIR / "hal" / "unix" / "fakes"
BOARDS_DIR = REPO_ROOT / "hardware" / "boards"
CHIPS = ("esp32", "esp32s3", "esp32c3")
RESET_EXIT = 99  # lp_fake.RESET_EXIT
MAX_BOOTS = 12
# The badge's heap budget. With code in flash the whole matrix holds it; with the code in RAM the firmware alone
# (~100 KB on a 32-bit chip) does not fit it, here or on a chip (docs/ARCHITECTURE.md, "The badge's heap").
PORT_HEAPSIZE = os.environ.get("LP_PORT_HEAPSIZE", "96K")
CODE_IN_FLASH = os.environ.get("LP_CODE_IN_RAM", "") in ("", "0")
EXIT_NORMAL, EXIT_OTHER, EXIT_SAFE, EXIT_REPL = 0, 1, 3, 4
SOFT_RESET, WDT_RESET = 5, 3  # machine.reset_cause() after machine.reset() / a panic, and after the watchdog

# name -> expected outcome (what `lifepalette badge faults` prints)
FAULTS = {
    "no-config": "safe mode: config.json missing",
    "corrupt-config": "safe mode: config.json corrupt",
    "other-chip-config": "safe mode: the config's board is for another chip",
    "boot-journal": "normal: boot.py logs the journal error, main.py runs",
    "ble-active-error": "safe mode: ble.active(True) OSError at every try, retried 3 times, then the reason",
    "ble-register-error": "safe mode: gatts_register_services OSError at every try, retried 3 times, then the reason",
    "advertise-error": "normal: gap_advertise OSError for 3 s handled and counted",
    "notify-error": "normal: gatts_notify OSError for 3 s handled and counted",
    "no-mtu-exchange": "normal: no notifications (the central never exchanged MTU), adverts carry every frame",
    "memory-error": "reset and recovery: MemoryError in a tick, crash record written, machine.reset()",
    "timer-stall": "reset and recovery: the main loop stops, the watchdog resets the badge",
    "boot-oom": "safe mode: MemoryError at every boot while the badge comes up, 3 crashes, then the bare safe mode",
    "crash-loop": "safe mode: 3 crashes within 10 minutes",
    "fs-full": "safe mode: flash full, the frame counter cannot be reserved",
    "sensor-missing": "normal: no PPG sensor, missing-sensor LED pattern and telemetry bit, other sensors run",
    "acc-at-0x19": "normal: LIS3DH found at its other address 0x19",
    "nack-storm": "normal: 4 s of I2C NACKs and timeouts from boot, retried (bounded) and counted",
}
# The fault matrix (tests/test_firmware_faults.py, bench_firmware): every fault, on the chips and boards it concerns.
MATRIX = [
    ("no-config", "esp32", "esp32-devkitc"), ("no-config", "esp32s3", "esp32-s3-devkitc"),
    ("no-config", "esp32c3", "esp32-c3-supermini"), ("other-chip-config", "esp32", "esp32-devkitc"),
    ("other-chip-config", "esp32s3", "esp32-s3-devkitc"), ("other-chip-config", "esp32c3", "esp32-c3-supermini"),
    ("memory-error", "esp32c3", "esp32-c3-supermini"), ("sensor-missing", "esp32c3", "esp32-c3-supermini"), ("corrupt-config", "esp32", "esp32-devkitc"),
    ("corrupt-config", "esp32s3", "esp32-s3-devkitc"), ("boot-journal", "esp32", "esp32-devkitc"),
    ("ble-active-error", "esp32", "esp32-devkitc"), ("ble-register-error", "esp32s3", "esp32-s3-devkitc"),
    ("advertise-error", "esp32", "esp32-devkitc"), ("notify-error", "esp32", "esp32-devkitc"),
    ("no-mtu-exchange", "esp32s3", "esp32-s3-devkitc"), ("memory-error", "esp32", "esp32-devkitc"),
    ("memory-error", "esp32s3", "esp32-s3-devkitc"), ("timer-stall", "esp32", "esp32-devkitc"),
    ("crash-loop", "esp32", "esp32-devkitc"), ("boot-oom", "esp32", "esp32-devkitc"), ("fs-full", "esp32", "esp32-devkitc"),
    ("sensor-missing", "esp32", "esp32-devkitc"), ("sensor-missing", "esp32s3", "esp32-s3-devkitc"),
    ("acc-at-0x19", "esp32s3", "esp32-s3-devkitc"), ("nack-storm", "esp32", "esp32-devkitc"),
]
DEFAULT_AT = {"advertise-error": 5.0, "notify-error": 5.0, "memory-error": 5.0, "timer-stall": 5.0}


@dataclass
class PortRun:
    exit_code: int = EXIT_OTHER
    outcome: str = ""
    boots: int = 0
    resets: list[tuple[str, int]] = field(default_factory=list)  # (why, simulated ms)
    lines: list[str] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)  # SLIP-framed frames the badge wrote to USB serial

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def parse_fault(spec: str) -> tuple[str, float | None]:
    name, _, at = spec.partition("@")
    if name not in FAULTS:
        raise UsageError(f"unknown fault {name!r} (see `lifepalette badge faults`)")
    if not at:
        return name, None
    try:
        seconds = float(at)
    except ValueError:
        raise UsageError(f"--fault {spec}: expected NAME@SECONDS") from None
    if seconds < 0:
        raise UsageError(f"--fault {spec}: SECONDS must be >= 0")
    return name, seconds


def board_file(board: str) -> dict:
    path = BOARDS_DIR / f"{board}.json"
    if not path.exists():
        raise UsageError(f"unknown board {board!r}")
    return json.loads(path.read_text())


def boards_for_chip(chip: str) -> list[str]:
    return sorted(json.loads(p.read_text())["board"] for p in BOARDS_DIR.glob("*.json")
                  if json.loads(p.read_text())["chip"] == chip)


def chip_of_config(config: dict) -> str:
    return board_file(config.get("board", "esp32-devkitc"))["chip"]


BOOT_SOURCES = ("boot.py", "main.py", "lp_boot_switch.py")  # source on the badge, as `lifepalette flash` leaves them


def compile_fakes() -> Path:
    """The stand-ins as .mpy (cached by content): compiled, they cost the badge's heap no bytecode compilation."""
    from lifepalette.virtual_badge import MPY_FLAGS

    sources = sorted(FAKES_DIR.glob("*.py"))
    digest = hashlib.sha256(" ".join(MPY_FLAGS).encode())
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    root = Path(tempfile.gettempdir()) / f"lifepalette-fakes-{os.getuid()}"
    target = root / digest.hexdigest()[:16]
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix="build-"))
    for path in sources:
        proc = subprocess.run([mpy_cross_binary(), *MPY_FLAGS, "-o", str(work / (path.stem + ".mpy")), str(path)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise UsageError(f"mpy-cross failed on {path.name}: {proc.stderr.strip()}")
    try:
        work.rename(target)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _cache_dir(kind: str, digest: str) -> Path:
    return Path(tempfile.gettempdir()) / f"lifepalette-{kind}-{os.getuid()}" / digest[:16]


def _add_tree(writer, folder: Path, skip: tuple[str, ...] = ()) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            writer.opendir(path.name)
            _add_tree(writer, path)
            writer.closedir()
        elif path.suffix == ".mpy" and path.name not in skip:
            writer.mkfile(path.name, path.read_bytes())


def build_rom() -> Path:
    """The code a badge keeps in flash, as a ROMFS image (cached by content): every compiled firmware module, the
    stand-ins (C modules on the chip) and lp_port (the port's main.c), but not lp_rom, which mounts it. The folder
    holds rom.img, and port/ with lp_rom.mpy alone (the interpreter's path before the mount)."""
    from mpremote.romfs import VfsRomWriter

    from lifepalette.virtual_badge import compile_firmware

    firmware, fakes = compile_firmware(), compile_fakes()
    target = _cache_dir("rom", hashlib.sha256(f"{firmware.name} {fakes.name}".encode()).hexdigest())
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix="build-"))
    writer = VfsRomWriter()
    _add_tree(writer, firmware)
    _add_tree(writer, fakes, skip=("lp_rom.mpy",))
    (work / "rom.img").write_bytes(writer.finalise())
    (work / "port").mkdir()
    shutil.copy(fakes / "lp_rom.mpy", work / "port" / "lp_rom.mpy")
    try:
        work.rename(target)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return target


def heap_bytes(size: str) -> int:
    """-X heapsize's value in bytes ("96K" -> 98304)."""
    scale = {"K": 1024, "M": 1024 * 1024}.get(size[-1:].upper(), 1)
    return int(size[:-1] if scale > 1 else size) * scale


def heap_budget(budget: str = PORT_HEAPSIZE) -> tuple[int, int]:
    """(pool, free) of a plain `-X heapsize=budget` interpreter at the point where lp_rom pins its ballast: what a
    badge with that heap and its code in flash has there. Measured once per interpreter binary and cached."""
    rom = build_rom()
    binary = Path(micropython_binary())
    st = binary.stat()
    key = f"{binary.resolve()} {st.st_size} {st.st_mtime_ns} {rom.name} {budget}"
    cache = _cache_dir("heap", hashlib.sha256(key.encode()).hexdigest()).with_suffix(".json")
    if cache.exists():
        pool, free = json.loads(cache.read_text())
        return pool, free
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "port").symlink_to(rom / "port", target_is_directory=True)
        proc = subprocess.run([str(binary), "-X", f"heapsize={budget}", "-c", "import lp_rom"], cwd=tmp,
                              env=dict(os.environ, MICROPYPATH="port", LP_HEAP_PROBE="1"), capture_output=True,
                              text=True, timeout=60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FAKE heap probe ")), None)
    if line is None:
        raise UsageError(f"the heap probe failed: {(proc.stdout + proc.stderr).strip()[-300:]}")
    fields = dict(f.split("=") for f in line.split()[3:])
    pool, free = int(fields["pool"]), int(fields["free"])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = cache.with_suffix(f".{os.getpid()}")
    tmp_file.write_text(json.dumps([pool, free]))
    os.replace(tmp_file, cache)
    return pool, free


def _link(flash: Path, name: str, target: Path) -> None:
    tmp = flash / (name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, flash / name)


def _unlink(flash: Path, name: str) -> None:
    if (flash / name).is_symlink():
        (flash / name).unlink()


def lay_out_flash(flash: Path, code_in_flash: bool = CODE_IN_FLASH) -> None:
    """boot.py, main.py and lp_boot_switch.py as source at the root, as on the badge's file system. Code in flash:
    port/ holds the shim that mounts the image (lp_rom, build_rom). Code in RAM: the compiled packages under lib/ and the
    compiled stand-ins under fakes/ (short relative names: every module's __file__ is a qstr on the heap)."""
    from lifepalette.virtual_badge import compile_firmware

    for name in BOOT_SOURCES:
        shutil.copy(FIRMWARE_DIR / name, flash / name)
    if code_in_flash:
        _unlink(flash, "lib")
        _unlink(flash, "fakes")
        _link(flash, "port", build_rom() / "port")
    else:
        _unlink(flash, "port")
        _link(flash, "lib", compile_firmware())
        _link(flash, "fakes", compile_fakes())


def prepare_flash(flash: Path, config: dict, chip: str, faults: dict[str, float | None],
                  code_in_flash: bool = CODE_IN_FLASH) -> None:
    """The badge's file system as the faults want it."""
    flash.mkdir(parents=True, exist_ok=True)
    lay_out_flash(flash, code_in_flash)
    cfg = flash / "config.json"
    if "no-config" in faults:
        cfg.unlink(missing_ok=True)
    elif "corrupt-config" in faults:
        cfg.write_text('{"dev_id": 258, "key": ')
    elif "other-chip-config" in faults:
        others = [b for c in CHIPS if c != chip for b in boards_for_chip(c)]
        cfg.write_text(json.dumps(dict(config, board=others[0])))
    else:
        cfg.write_text(json.dumps(config))
    journal = flash / ".lp_switch"
    if "boot-journal" in faults:  # a journal that cannot be read (a directory): lp_boot_switch raises OSError
        journal.mkdir(exist_ok=True)
    elif journal.is_dir():
        journal.rmdir()


def _button(config: dict, chip: str) -> int:
    board = config.get("board", "esp32-devkitc")
    mine = (BOARDS_DIR / f"{board}.json").exists() and chip_of_config(config) == chip
    names = [board] if mine else boards_for_chip(chip)
    return board_file(names[0])["pins"]["button"]["gpio"] if names else -1


def interpreter(heapsize: str, code_in_flash: bool) -> tuple[str, dict[str, str]]:
    """The interpreter's -X heapsize and the environment for a badge with `heapsize` of heap (run it with
    `-c "import " + env["LP_SHIM"]`): code in flash, the image on top of it and the free heap lp_rom's ballast must
    leave."""
    if not code_in_flash:
        return heapsize, {"MICROPYPATH": "fakes:lib", "LP_SHIM": "lp_port"}
    rom = build_rom() / "rom.img"
    pool, free = heap_budget(heapsize)
    # room for the image, the stand-ins' import (C modules on the chip, ~24 KB here) and the mount; the ballast
    # takes up what is left over
    total = heap_bytes(heapsize) + rom.stat().st_size + 64 * 1024
    return str(total), {"MICROPYPATH": "port", "LP_SHIM": "lp_rom", "LP_ROM": str(rom), "LP_HEAP_FREE": str(free),
                        "LP_HEAP_POOL": str(pool), "LP_HEAP_BUDGET": heapsize}


def run_port(config: dict, chip: str, faults: dict[str, float | None], flash: Path, seconds: int = 20,
             heapsize: str = PORT_HEAPSIZE, echo: Callable[[str], None] | None = None, timeout: float = 180,
             code_in_flash: bool = CODE_IN_FLASH) -> PortRun:
    """Boot the firmware as `chip` with `faults` until `seconds` of simulated time have passed, on a badge with
    `heapsize` of heap and its code in flash (or, code_in_flash=False, loaded into that heap)."""
    prepare_flash(flash, config, chip, faults, code_in_flash)
    armed = ",".join(name if at is None else f"{name}@{at:g}"
                     for name, at in ((n, a if a is not None else DEFAULT_AT.get(n)) for n, a in faults.items()))
    heapsize, layout = interpreter(heapsize, code_in_flash)
    env = dict(os.environ, **layout, LP_CHIP=chip, LP_FAULTS=armed, LP_RTC="",
               LP_END_MS=str(seconds * 1000), LP_BUTTON=str(_button(config, chip)))
    run = PortRun()
    t0, cause = 0, 1
    while run.boots < MAX_BOOTS:
        run.boots += 1
        env.update(LP_T0_MS=str(t0), LP_RESET_CAUSE=str(cause))
        proc = subprocess.Popen([micropython_binary(), "-X", f"heapsize={heapsize}", "-c", "import " + env["LP_SHIM"]],
                                cwd=flash, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        boot_start = len(run.lines)
        repl = False
        assert proc.stdout is not None
        for line in serial_lines(proc.stdout, run.frames):
            run.lines.append(line)
            if echo:
                echo(line)
            if line.startswith(">>>"):
                repl = True
                break
        if repl:
            proc.kill()
            proc.wait()
            run.lines.append("REPL reached")
            if echo:
                echo("REPL reached")
            run.exit_code, run.outcome = EXIT_REPL, "REPL"
            return run
        rc = proc.wait(timeout=timeout)
        boot = run.lines[boot_start:]
        if rc == RESET_EXIT:
            why, at = _reset_line(boot)
            run.resets.append((why, at))
            t0, cause = at, (WDT_RESET if why == "watchdog" else SOFT_RESET)
            env["LP_RTC"] = next((ln[len("FAKE rtc "):] for ln in reversed(boot) if ln.startswith("FAKE rtc ")), "")
            continue
        if rc != 0:
            run.outcome = f"interpreter exited {rc}"
            return run
        run.exit_code, run.outcome = _judge(boot, seconds * 1000, run.resets)
        return run
    run.outcome = f"boot loop ({MAX_BOOTS} boots)"
    return run


def serial_lines(stream: IO[bytes], frames: list[bytes]) -> Iterator[str]:
    """Text lines of the badge's serial output, with the SLIP frames (0xC0 ... 0xC0) taken out into `frames`."""
    text = bytearray()
    frame: bytearray | None = None
    while chunk := stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096):
        for b in chunk:
            if b == 0xC0:
                if frame is None:
                    frame = bytearray([b])
                else:
                    frame.append(b)
                    frames.append(bytes(frame[1:-1]).replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))
                    frame = None
            elif frame is not None:
                frame.append(b)
            elif b == 0x0A:
                yield text.decode(errors="replace").rstrip("\r")
                text.clear()
            else:
                text.append(b)
    if text:
        yield text.decode(errors="replace")


def _reset_line(boot: list[str]) -> tuple[str, int]:
    for line in reversed(boot):
        if line.startswith("FAKE reset ("):
            why = line[len("FAKE reset ("):line.rindex(") at ")]
            return why, int(line.rsplit(" ", 1)[1])
    return "unknown", 0


def _judge(boot: list[str], end_ms: int, resets: list) -> tuple[int, str]:
    if any(line.startswith("SAFE MODE:") for line in boot):
        return EXIT_SAFE, "safe mode"
    last = -1
    for line in boot:
        if line.startswith("FAKE end at "):
            fields = dict(f.split("=") for f in line.split()[4:])
            last = int(fields.get("last_advert", "-1"))
    if last < end_ms - 2500:
        return EXIT_OTHER, "silent stop (no advert in the last seconds)"
    return EXIT_NORMAL, "reset and recovery" if resets else "normal"


def recovery_ms(run: PortRun, fault_ms: int) -> int | None:
    """Simulated badge time from the fault to the LED's first lit frame after the last boot (None: no reset)."""
    if not run.resets:
        return None
    boots = [i for i, line in enumerate(run.lines) if line.startswith("FAKE boot ")]
    for line in run.lines[boots[-1]:]:
        if line.startswith("FAKE LED "):
            t, r, g, b = (int(x) for x in line.split()[2:6])
            if r + g + b:
                return t - fault_ms
    return None


def live_heap(run: PortRun) -> int | None:
    """The live heap after a collection at the end of the run (stand-ins included), from the fakes' end line."""
    for line in reversed(run.lines):
        if line.startswith("FAKE end at ") and " heap=" in line:
            return int(line.rsplit("heap=", 1)[1])
    return None


STAND_IN_PROBE = ("import gc\ngc.collect()\na = gc.mem_alloc()\nimport lp_fake, os, time, machine, bluetooth, "
                  "neopixel, esp32\ngc.collect()\nprint(gc.mem_alloc() - a)")


def stand_in_heap(flash: Path, chip: str = "esp32") -> int:
    """Heap the stand-ins (and the chip models they attach) take once imported, on this unix port."""
    flash.mkdir(parents=True, exist_ok=True)
    lay_out_flash(flash, code_in_flash=False)
    env = dict(os.environ, MICROPYPATH="fakes:lib", LP_CHIP=chip)
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=512K", "-c", STAND_IN_PROBE], cwd=flash, env=env,
                          capture_output=True, text=True, timeout=60)
    return int(proc.stdout.split()[-1])


def fault_lines() -> list[str]:
    return [f"{name}\t{outcome}" for name, outcome in FAULTS.items()]


def main_echo(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
