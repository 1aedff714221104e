"""The hub's web app: the public cove wall at `/`, the operator console at `/operator`, and their JSON API."""

from lifepalette.web.app import build_app, serve_web

__all__ = ["build_app", "serve_web"]
