"""Who may use the dashboard, and that a form was sent by its own page.

- Bind and token: the HTTP MCP transport's rules (mcp_http): loopback by default, any other bind
  needs a token. With a token, a person logs in once (token + their name) and gets a session.
- Every request's Host must name this server (DNS rebinding); every POST needs an Origin naming
  it and the session's CSRF token (a hidden form field), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from bluegreen.mcp_http import security_settings

SESSION_COOKIE = "bluegreen_session"
MAX_SESSIONS = 1000


@dataclass
class Session:
    who: str  # recorded with an approval: the login name, or the OS user the dashboard runs as
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    notices: list[str] = field(default_factory=list)  # shown once on the next page


class Guard:
    def __init__(
        self, host: str, port: int, token: str | None, os_user: str, allow_hosts: tuple[str, ...]
    ) -> None:
        settings = security_settings(host, port, allow_hosts)
        self._hosts = frozenset(h.lower() for h in settings.allowed_hosts or [])
        self._origins = frozenset(o.lower() for o in settings.allowed_origins or [])
        self._token = token.encode() if token else None
        self._os_user = os_user
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @property
    def needs_login(self) -> bool:
        return self._token is not None

    def host_ok(self, headers: Mapping[str, str]) -> bool:
        return headers.get("host", "").lower() in self._hosts

    def origin_ok(self, headers: Mapping[str, str]) -> bool:
        return headers.get("origin", "").lower() in self._origins

    def session(self, session_id: str | None) -> Session | None:
        with self._lock:
            return self._sessions.get(session_id or "")

    def open_session(self, who: str | None = None) -> tuple[str, Session]:
        """Without a token, every visitor of the loopback address is the OS user running it."""
        session_id = secrets.token_urlsafe(24)
        session = Session(who=who or self._os_user)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = session
        return session_id, session

    def token_ok(self, offered: str) -> bool:
        return self._token is not None and hmac.compare_digest(offered.encode(), self._token)

    @staticmethod
    def csrf_ok(session: Session, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), session.csrf.encode())
