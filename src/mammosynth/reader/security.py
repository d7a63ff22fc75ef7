"""Login rate limiting and CSRF helpers.

Sessions are random tokens in an HttpOnly, SameSite=Strict cookie (``Secure`` when the
app is told it runs behind HTTPS). Every state-changing request carries the session's
CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); the login form uses a
double-submit token from a pre-session cookie.
"""
from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict, deque

SESSION_COOKIE = "msyn_session"
PRELOGIN_COOKIE = "msyn_pre"


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class RateLimiter:
    """At most ``limit`` failed logins per key within ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 300.0):
        self.limit, self.window = limit, window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._prune(k, now)) >= self.limit for k in keys)

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._prune(k, now).append(now)

    def reset(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
