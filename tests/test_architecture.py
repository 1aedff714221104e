"""The code's seams: imports point one way, defects of structure stay fixed (issue 15)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "host" / "lifepalette"
# Packages that exist only on the host (CPython): code that runs on a badge must never import them.
HOST_ONLY = {"lifepalette", "numpy", "scipy", "aiohttp", "bleak", "bumble", "serial", "paho", "pythonosc", "pyarrow"}
FIRMWARE_PACKAGES = {"app", "drivers", "hal", "lp_boot_switch", "boot", "main"}
# Within the host: what a package must not import (a lower layer never reaches into a higher one).
HOST_LAYERS = {
    "scoring": {"hub", "web", "outputs", "commands", "transports", "ble", "sim", "tools"},
    "kernels": {"hub", "web", "outputs", "commands", "transports", "ble", "sim", "tools", "scoring"},
    "hub": {"web", "commands", "sim", "tools", "outputs"},
    "outputs": {"web", "commands", "sim", "tools"},
    "transports": {"web", "commands", "sim", "tools", "outputs"},
    "ble": {"web", "commands", "sim", "tools", "outputs", "hub"},
    "web": {"commands", "sim", "tools"},
    "sim": {"commands", "web", "tools", "transports", "ble", "outputs"},
    # the release mechanism sits just above boundary.py: it builds PublicViews, and knows nothing of who calls it
    "privacy": {"hub", "web", "outputs", "commands", "transports", "ble", "sim", "tools", "scoring", "kernels"},
}
# modules at the bottom of the host: they import nothing of lifepalette but each other
LOWEST = {"boundary.py", "privacy/__init__.py", "errors.py", "paths.py", "crypto.py", "addresses.py"}


def imported_modules(path: Path) -> list[str]:
    """Every absolute module a file imports, at any depth (function-level imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def _violations(files, forbidden) -> list[str]:
    return [f"{path.name} imports {name}" for path in files for name in imported_modules(path)
            if name.split(".")[0] in forbidden]


def test_protocol_imports_nothing_above_it():
    found = _violations(sorted((ROOT / "protocol").rglob("*.py")), HOST_ONLY | FIRMWARE_PACKAGES)
    assert found == []


def test_firmware_imports_protocol_and_itself_only():
    found = _violations(sorted((ROOT / "firmware").rglob("*.py")), HOST_ONLY)
    assert found == []


def test_host_layers_import_downwards_only():
    found = []
    for package, forbidden in HOST_LAYERS.items():
        for path in sorted((HOST / package).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)} imports {name}" for name in imported_modules(path)
                      if name.startswith("lifepalette.") and name.split(".")[1] in forbidden]
    for name in LOWEST:
        found += [f"{name} imports {m}" for m in imported_modules(HOST / name)
                  if m.startswith("lifepalette.") and not {m.split(".")[1] + ".py", m.split(".")[1] + "/__init__.py"}
                  & LOWEST]
    assert found == []


def test_the_import_check_sees_lazy_imports(tmp_path):
    """The checks above would pass on anything if imported_modules missed imports inside functions."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from lifepalette.crypto import seal\n    import numpy.linalg\n")
    assert imported_modules(probe) == ["lifepalette.crypto", "numpy.linalg"]
    assert _violations([probe], HOST_ONLY) != []


def test_a_command_module_that_does_not_import_fails_loudly(monkeypatch):
    from lifepalette import cli

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "no_such_command"])
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


def test_a_scoring_package_that_does_not_import_stops_the_hub(tmp_path, monkeypatch):
    from lifepalette.hub import Hub

    monkeypatch.setitem(sys.modules, "lifepalette.scoring", None)  # any import of it raises ImportError
    with pytest.raises(ImportError):
        Hub(tmp_path / "hub.db", scorer="auto")


def test_the_100k_fuzz_floor_holds_when_run_alone():
    """The floor's test must not depend on which other tests ran before it (it skipped when run alone)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          str(ROOT / "tests" / "test_protocol_fuzz.py"), "-k", "reach_100k"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-2000:]


@pytest.mark.parametrize(("text", "kw", "expected"), [
    ("10.0.0.5:7000", {}, ("10.0.0.5", 7000)),
    ("[::1]:8080", {}, ("::1", 8080)),
    (":9000", {"default_host": "0.0.0.0"}, ("0.0.0.0", 9000)),
    ("localhost", {"default_port": 9000}, ("localhost", 9000)),
    ("127.0.0.1:0", {"allow_port_zero": True}, ("127.0.0.1", 0)),
    ("127.0.0.1:0", {}, None), ("host:notaport", {}, None), (":9000", {}, None), ("h:70000", {}, None),
    ("localhost", {}, None), ("h:-1", {}, None),
])
def test_every_host_port_argument_is_parsed_by_one_function(text, kw, expected):
    from lifepalette.addresses import split_host_port

    if expected is None:
        with pytest.raises(ValueError):
            split_host_port(text, **kw)
    else:
        assert split_host_port(text, **kw) == expected


_MD_REFERENCE = re.compile(r"[\w./-]*\b[\w-]+\.md\b")
_TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".js", ".html", ".css", ".json", ".service", ".env", ".rules", ".conf"}


def _cited_file_exists(citing: str, ref: str, names: set[str]) -> bool:
    """A path relative to the repository or to the citing file, a bare name of a document in the repository, or the
    installed copy of one (an absolute path such as the unit file's /opt/lifepalette/README.md)."""
    if ref.startswith("/"):
        return Path(ref).name in names
    root = ROOT.resolve()
    for candidate in (ROOT / ref.lstrip("/"), (ROOT / citing).parent / ref):
        candidate = candidate.resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            return True
    return "/" not in ref and ref in names


def test_every_document_a_file_cites_is_in_this_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    names = {Path(name).name for name in tracked if name.endswith(".md")}
    missing = [f"{name}: {ref}" for name in tracked
               if (Path(name).suffix in _TEXT_SUFFIXES or name == "Makefile") and (ROOT / name).is_file()
               for ref in _MD_REFERENCE.findall((ROOT / name).read_text(errors="replace"))
               if not _cited_file_exists(name, ref, names)]
    assert missing == []


def test_the_citation_check_finds_a_missing_document():
    # the names below are built at run time, so this file itself cites no document outside the repository
    md = "." + "md"
    absent, absent_in_folder = "NOSUCH" + md, "elsewhere/NOTES" + md
    assert _MD_REFERENCE.findall(f"see {absent} §7 and {absent_in_folder}, or protocol/PROTOCOL.md") == [
        absent, absent_in_folder, "protocol/PROTOCOL.md"]
    assert not _cited_file_exists("host/x.py", absent, {"PROTOCOL.md"})
    assert not _cited_file_exists("host/x.py", absent_in_folder, {"NOTES" + md})
    assert _cited_file_exists("host/x.py", "protocol/PROTOCOL.md", set())
    assert _cited_file_exists("docs/ARCHITECTURE.md", "../protocol/PROTOCOL.md", set())


def _contract_gaps(cls: type, protocol: type) -> list[str]:
    """What `cls` lacks of `protocol`: a member, async-ness, or a method's parameters (extra ones need defaults)."""
    import inspect

    gaps = [f"{cls.__name__}.{name}: missing" for name in getattr(protocol, "__annotations__", {})
            if not hasattr(cls, name)]
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        own = getattr(cls, name, None)
        if own is None:
            gaps.append(f"{cls.__name__}.{name}: missing")
        elif inspect.iscoroutinefunction(own) != inspect.iscoroutinefunction(member):
            gaps.append(f"{cls.__name__}.{name}: async mismatch")
        else:
            wanted = list(inspect.signature(member).parameters)
            given = list(inspect.signature(own).parameters.values())
            extra_required = [p for p in given[len(wanted):] if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
            if [p.name for p in given[:len(wanted)]] != wanted or extra_required:
                gaps.append(f"{cls.__name__}.{name}: parameters differ")
    return gaps


def test_transports_and_hubs_keep_their_written_contracts():
    from lifepalette.hub import Hub
    from lifepalette.hub.contracts import HubSurface, Transport
    from lifepalette.transports.ble import BleTransport
    from lifepalette.transports.serial import SerialTransport
    from lifepalette.transports.udp import UdpTransport

    assert [gap for cls in (UdpTransport, SerialTransport, BleTransport) for gap in _contract_gaps(cls, Transport)] \
        == []
    assert _contract_gaps(Hub, HubSurface) == []

    class Incomplete:
        name = "x"

        def send(self, frame):
            return True

    assert set(_contract_gaps(Incomplete, Transport)) == {"Incomplete.start: missing", "Incomplete.stop: missing",
                                                          "Incomplete.describe: missing",
                                                          "Incomplete.send: parameters differ"}


def test_public_numbers_are_made_in_one_place():
    """Only hub/views.py builds a public view, through the release mechanism plugged into it (privacy/release.py);
    every other surface re-publishes it, and the sphere reads copies back only through PublicView.from_json."""
    makers = re.compile(r"\b(PublicView|GroupAggregate|Palette)(\.withheld)?\(")
    found = sorted(str(path.relative_to(HOST)) for path in HOST.rglob("*.py")
                   if path.name != "boundary.py" and makers.search(path.read_text()))
    assert found == ["hub/views.py", "privacy/release.py"]


TYPED_BOUNDARIES = ["boundary.py", "privacy/__init__.py", "privacy/release.py", "privacy/budget.py", "addresses.py",
                    "hub/contracts.py", "hub/views.py", "hub/ingest.py", "hub/core.py", "outputs/public.py",
                    "web/feed.py", "hub/journey.py", "hub/wearer_journey.py", "hub/wearer_access.py",
                    "hub/wearer_link.py", "web/me.py", "web/dashboard.py", "report/data.py", "report/load.py",
                    "report/render.py"]


def test_the_typed_boundaries_type_check(tmp_path):
    """mypy holds the hub, its views and the publishers to the boundary types and the written contracts."""
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                           "--python-version", "3.11", "--cache-dir", str(tmp_path / "cache"),
                           *(str(HOST / name) for name in TYPED_BOUNDARIES)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_no_test_module_imports_another():
    """Shared test code lives in tests/helpers/: a test module imported by another runs its module-level set-up twice
    and collects its tests under the importer's name too."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0].startswith("test_")]
    assert offenders == []
