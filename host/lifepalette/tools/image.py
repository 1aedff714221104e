"""The badge image (firmware/manifest.py): which source files it freezes, and the digest that ties a built image to
them.

`make badge-image` writes the digest of the frozen sources into firmware/lp_image.py, which the manifest freezes
with them. `lifepalette flash` reads it back from the badge: boot.py and main.py from one set of sources next to
frozen modules from another would run code that was never tested together, so it refuses and says which image to
build. Usage: `python -m lifepalette.tools.image stamp` (what the Makefile runs) or `... digest`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from lifepalette.errors import LifePaletteError
from lifepalette.paths import FIRMWARE_DIR

MANIFEST_FILE = "manifest.py"
STAMP_FILE = "lp_image.py"  # generated into the firmware folder, frozen with the image, never committed
STAMP_MODULE = "lp_image"


class Manifest(NamedTuple):
    frozen: dict[str, Path]  # module name -> source file, the stamp excluded
    includes: list[str]  # other manifests (the port's own) and require()d packages
    stamped: bool  # the manifest freezes the digest stamp


class ImageMismatch(LifePaletteError):
    """The badge's firmware image was built from other sources than the files flash would put next to it."""


def read_manifest(firmware_dir: Path = FIRMWARE_DIR) -> Manifest:
    """Run firmware/manifest.py as MicroPython's build does, with the manifest API (package, module, include,
    require, freeze, metadata) recording what it names instead of compiling it."""
    manifest = firmware_dir / MANIFEST_FILE
    frozen: dict[str, Path] = {}
    includes: list[str] = []
    stamps: list[Path] = []

    def add(base: Path, rel: str) -> None:
        name = rel[:-3].replace("/", ".").removesuffix(".__init__")
        if name == STAMP_MODULE:
            stamps.append(base / rel)
            return
        if name in frozen:
            raise LifePaletteError(f"{manifest}: {name} frozen twice")
        frozen[name] = base / rel

    def package(path: str, files: tuple[str, ...] | None = None, base_path: str = ".", opt: int | None = None) -> None:
        base = (manifest.parent / base_path).resolve()
        names = files if files is not None else [p.relative_to(base / path).as_posix()
                                                 for p in sorted((base / path).rglob("*.py"))]
        for rel in names:
            add(base, f"{path}/{rel}")

    def module(path: str, base_path: str = ".", opt: int | None = None) -> None:
        add((manifest.parent / base_path).resolve(), path)

    def freeze(path: str, script: object = None, opt: int | None = None) -> None:
        raise LifePaletteError(f"{manifest}: freeze({path!r}): name the files (package/module), so the list is "
                               "checkable")

    api: dict[str, Callable[..., None]] = {
        "package": package, "module": module, "freeze": freeze, "include": includes.append,
        "require": lambda name, **kw: includes.append("require " + name), "metadata": lambda **kw: None}
    exec(compile(manifest.read_text(), str(manifest), "exec"), api)
    return Manifest(frozen, includes, bool(stamps))


def image_digest(firmware_dir: Path = FIRMWARE_DIR) -> str:
    """The frozen sources' digest (module names and file contents), 16 hex digits."""
    h = hashlib.sha256()
    for name, src in sorted(read_manifest(firmware_dir).frozen.items()):
        h.update(name.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def write_stamp(firmware_dir: Path = FIRMWARE_DIR) -> Path:
    """firmware/lp_image.py for the image about to be built."""
    path = firmware_dir / STAMP_FILE
    path.write_text("# Written by `make badge-image` (lifepalette.tools.image): the digest of the sources frozen with "
                    "it.\n" f'DIGEST = "{image_digest(firmware_dir)}"\n')
    return path


def check_image(on_badge: str | None, expected: str) -> str | None:
    """Raise ImageMismatch when the badge's image digest differs from the sources'; a note when it has none."""
    if on_badge is None:
        return ("the badge image carries no digest (built without `make badge-image`?): cannot check that its "
                "frozen modules match these sources")
    if on_badge != expected:
        raise ImageMismatch(f"the badge image was built from other firmware sources (image {on_badge}, these sources "
                            f"{expected}): build the image from these sources (`make badge-image`) and write it to the "
                            "badge (hardware/bring-up.md, section 1), then flash again")
    return None


def main(argv: list[str]) -> int:
    if argv == ["stamp"]:
        print(f"{write_stamp()}: {image_digest()}")
        return 0
    if argv == ["digest"]:
        print(image_digest())
        return 0
    print("usage: python -m lifepalette.tools.image stamp|digest", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
