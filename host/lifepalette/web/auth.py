"""Operator authentication: the token policy, server-held sessions, and backoff for wrong guesses.

- A token is at least `MIN_TOKEN_LENGTH` characters and never a known placeholder (`check_token`).
- Signing in with the token creates a random session id held by the server with an expiry; the browser's cookie is
  that id, so logging out (or the token changing) revokes it, unlike a cookie derived from the token.
- Every wrong token or unknown session from one client doubles that client's wait before its next attempt
  (`Backoff`): during the wait it gets `429` with `Retry-After`, and its guesses are not even checked.

Sans-I/O: no aiohttp here; `now` is passed in (monotonic seconds), so tests drive time directly.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from lifepalette.errors import UsageError

MIN_TOKEN_LENGTH = 16
PLACEHOLDERS = frozenset({"change-me", "changeme", "change-me-please", "replace-me", "secret", "password",
                          "token", "operator", "lifepalette"})
TOKEN_ENV = "LP_OPERATOR_TOKEN"
SESSION_TTL_S = 12 * 3600.0
MAX_SESSIONS = 256


def check_token(token: str, source: str = "the operator token") -> str:
    """The token stripped of surrounding whitespace, or a UsageError saying why it is refused."""
    token = token.strip()
    if token.lower() in PLACEHOLDERS or token.lower().startswith("change-me"):
        raise UsageError(f"{source} is the shipped placeholder: put a random one in its place "
                         "(e.g. `openssl rand -hex 16`)")
    if len(token) < MIN_TOKEN_LENGTH:
        raise UsageError(f"{source} is {len(token)} characters long: use at least {MIN_TOKEN_LENGTH} random "
                         "characters (e.g. `openssl rand -hex 16`)")
    return token


def read_token_file(path: str | os.PathLike) -> str:
    """The token from a file that only its owner can read (0600 or stricter)."""
    p = Path(path)
    try:
        info = p.stat()
    except OSError as exc:
        raise UsageError(f"--token-file {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"--token-file {p}: not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(f"--token-file {p}: readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                         f"run `chmod 600 {p}`")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--token-file {p}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    return check_token(text, f"the token in {p}")


class TokenSource:
    """The current operator token; with a file, re-read when the file changes (at most once a second)."""

    def __init__(self, token: str | None = None, path: str | os.PathLike | None = None) -> None:
        if (token is None) == (path is None):
            raise ValueError("give exactly one of token and path")
        self.path = Path(path) if path is not None else None
        self._token = check_token(token) if token is not None else read_token_file(self.path)  # type: ignore[arg-type]
        self._mtime = self._stat()
        self._checked = 0.0
        self.generation = 0  # bumps whenever the token changes: sessions from an older generation are void

    def _stat(self) -> float:
        if self.path is None:
            return 0.0
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def current(self, now: float) -> str:
        if self.path is not None and now - self._checked >= 1.0:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.set(read_token_file(self.path))
                except UsageError:
                    pass  # a half-written or bad file: keep the token we have until a good one appears
        return self._token

    def set(self, token: str) -> None:
        token = check_token(token)
        if token != self._token:
            self._token = token
            self.generation += 1

    def matches(self, given: str, now: float) -> bool:
        return hmac.compare_digest(given.strip().encode(), self.current(now).encode())


@dataclass
class _Session:
    expires: float
    generation: int


class Sessions:
    """Server-held operator sessions: random ids, an expiry, revoked on logout or when the token changes."""

    def __init__(self, tokens: TokenSource, ttl_s: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.tokens = tokens
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def create(self, now: float) -> str:
        self.tokens.current(now)
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = _Session(now + self.ttl_s, self.tokens.generation)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)  # the oldest sign-in goes first
        return sid

    def valid(self, sid: str, now: float) -> bool:
        if not sid:
            return False
        self.tokens.current(now)
        session = self._sessions.get(sid)
        if session is None:
            return False
        if session.expires <= now or session.generation != self.tokens.generation:
            del self._sessions[sid]
            return False
        return True

    def revoke(self, sid: str) -> bool:
        return self._sessions.pop(sid, None) is not None

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class _Failures:
    count: int
    blocked_until: float


class Backoff:
    """Per-client exponential backoff after failed authentication: a typo is free, then 0.5 s, 1 s, 2 s ... up to
    `max_s`."""

    def __init__(self, base_s: float = 0.5, max_s: float = 300.0, forget_s: float = 3600.0,
                 max_clients: int = 4096) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = forget_s
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, client: str, now: float) -> float:
        """Seconds this client must still wait before an attempt is even checked (0: go ahead)."""
        entry = self._clients.get(client)
        if entry is None:
            return 0.0
        if now - entry.blocked_until > self.forget_s:
            del self._clients[client]
            return 0.0
        return max(0.0, entry.blocked_until - now)

    def failed(self, client: str, now: float) -> float:
        entry = self._clients.pop(client, None) or _Failures(0, now)
        entry.count += 1
        wait = 0.0 if entry.count == 1 else min(self.max_s, self.base_s * 2 ** (entry.count - 2))
        entry.blocked_until = now + wait
        self._clients[client] = entry
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return wait

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
