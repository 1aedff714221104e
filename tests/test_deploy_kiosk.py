"""The kiosk unit shows the hub's own wall: cage + Chromium in kiosk mode on the port hub.env serves, restarted if it
dies, installed as README says."""

from __future__ import annotations

import configparser
import re

from lifepalette.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / name).read_text())
    return parser


def test_the_wall_unit_runs_chromium_kiosk_in_cage_on_the_hubs_wall_url():
    wall = unit("lifepalette-wall.service")
    start = wall["Service"]["ExecStart"].split()
    assert start[0].endswith("/cage") and "--" in start
    browser = start[start.index("--") + 1:]
    assert browser[0].endswith("chromium") and "--kiosk" in browser
    url = browser[-1]
    env = dict(line.split("=", 1) for line in (DEPLOY / "hub.env").read_text().splitlines()
               if line and not line.startswith("#"))
    port = env["LP_HTTP"].rsplit(":", 1)[1]
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/", url)  # the wall is the web app's root page
    assert f"127.0.0.1:{port}/api/cove" in wall["Service"]["ExecStartPre"]  # waits for the hub's web app
    assert wall["Service"]["Restart"] == "always"
    assert "lifepalette-hub.service" in wall["Unit"]["After"]
    assert wall["Install"]["WantedBy"] == "graphical.target"


def test_readme_says_how_to_install_the_kiosk_and_upgrade():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "sudo install -m 644 deploy/lifepalette-wall.service /etc/systemd/system/" in readme
    assert "systemctl enable --now lifepalette-wall" in readme
    upgrade = readme[readme.index("**Upgrade procedure**"):]
    for step in ("git pull", "pip install -e .", "systemctl restart lifepalette-hub"):
        assert step in upgrade
