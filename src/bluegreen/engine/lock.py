"""The locks on the HAProxy host: the app's operation lock (deploy and switch share it) and the
lock of a file HAProxy loads (every switch, restore and rollback that replaces it shares it;
see cfg_lock).

Acquire is one atomic `mkdir`; the holder's details are written inside. A stale lock is never
broken silently: only with break_lock=True, and only when it really is stale; breaking one records
the operation it interrupted in the history. Releasing never raises: a lock that cannot be removed
(the host went away) is reported by the operation, and counts as stale at once, since this process
no longer holds it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime
from types import TracebackType

from bluegreen.domain import lock as dlock
from bluegreen.engine import history
from bluegreen.engine.context import Context, StepEvent
from bluegreen.errors import BlueGreenError, LockedError

log = logging.getLogger("bluegreen.lock")

# Tokens of the locks this process holds right now (every OperationLock, every thread).
_held: set[str] = set()
_held_lock = threading.Lock()


def is_stale(holder: dlock.Holder, now: datetime) -> bool:
    """Stale: its process is gone or far past its time, or it names this very process, which no
    longer holds it (a release that could not reach the host)."""
    if holder.abandoned(now, socket.gethostname()):
        return True
    if holder.host == socket.gethostname() and holder.pid == os.getpid():
        with _held_lock:
            return holder.token not in _held
    return False


class OperationLock:
    """The lock of one app (`key` defaults to the app's name). `what` names it in messages."""

    def __init__(
        self,
        ctx: Context,
        app: str,
        operation: str,
        *,
        break_lock: bool = False,
        wait_s: float = 0.0,
        key: str | None = None,
        what: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.app = app
        self.operation = operation
        self.break_lock = break_lock
        self.wait_s = wait_s
        self.key = key or app
        self.what = what or app
        self.holder: dlock.Holder | None = None
        self.release_error: str | None = None  # set when the lock could not be removed
        self.broken: dlock.Holder | None = None  # the stale holder this acquire broke
        hp = ctx.config.haproxy
        self._host, self._work_dir, self._sudo = hp.ssh, hp.work_dir, hp.sudo

    def __enter__(self) -> OperationLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        broke = waited = False
        while True:
            holder = dlock.new_holder(self.operation, self.app, self.ctx.now())
            result = self.ctx.runner.run(
                self._host, dlock.acquire_command(self._work_dir, self.key, holder, self._sudo)
            )
            if result.ok:
                with _held_lock:
                    _held.add(holder.token)
                self.holder = holder
                return
            current = self.current()
            # No readable holder: a lock mid-creation, or one left corrupt. Counts as stale.
            stale = current is None or is_stale(current, self.ctx.now())
            # The cfg lock is only taken under the app's lock, which is taken first and released
            # last: a cfg lock held for this same app is left over from a run that is gone.
            left_over = current is not None and self.key != self.app and current.app == self.app
            if (left_over or (stale and self.break_lock)) and not broke:
                self._break(current)
                broke = True
                continue
            if time.monotonic() < deadline:
                if not waited and current is not None:
                    self.ctx.progress(StepEvent("lock", "info", f"waiting up to {self.wait_s:g}s: "
                                                f"{self._locked_by(current)}"))  # fmt: skip
                    waited = True
                time.sleep(0.5)
                continue
            where = dlock.lock_dir(self._work_dir, self.key)
            if current is None:
                raise LockedError(
                    f"the {self.what} lock at {where} exists but names no holder",
                    hint="if no deploy or switch is running, retry with breakLock",
                )
            if stale:
                raise LockedError(
                    f"{self.what} is locked by a STALE {self._holder(current)}",
                    hint="the holder is gone or far past its time: retry with breakLock to break it",
                )
            raise LockedError(
                self._locked_by(current),
                hint="wait for it to finish (the lock is released on success and on failure)",
            )

    def _break(self, holder: dlock.Holder | None) -> None:
        who = holder.describe() if holder else "an unreadable holder"
        self.ctx.progress(StepEvent("lock", "info", f"breaking stale lock of {who}"))
        self.ctx.runner.run(self._host, dlock.break_command(self._work_dir, self.key, self._sudo))
        self.broken = holder
        # Only an app's own lock records the interruption: the cfg lock's holder left its app's
        # lock stale too, and breaking that one records it (once).
        if holder is None or self.key != self.app:
            return
        # The interrupted operation never wrote its own history line: say it did not finish.
        user, host = history.who()
        problem = history.record(
            self.ctx, holder.operation, holder.app, "interrupted", by=(holder.user, holder.host),
            error=f"{holder.describe()} did not finish (its process is gone or far past its "
                  f"time); its stale lock was broken by {user}@{host} for a {self.operation}",
        )  # fmt: skip
        if problem:
            log.warning("%s: %s", self.app, problem)

    def current(self) -> dlock.Holder | None:
        raw = self.ctx.runner.read_file(self._host, dlock.holder_path(self._work_dir, self.key))
        return dlock.parse_holder(raw)

    def _holder(self, holder: dlock.Holder) -> str:
        """Who holds it; with the app's name when the lock is not that app's own."""
        return holder.describe() + ("" if self.key == holder.app else f" of {holder.app}")

    def _locked_by(self, holder: dlock.Holder) -> str:
        return f"{self.what} is locked: {self._holder(holder)}"

    def release(self) -> None:
        """Remove the lock. Never raises (it runs while an operation's result or error is on its
        way out, and must not replace it): a failure is kept in `release_error`."""
        if self.holder is None:
            return
        holder, self.holder = self.holder, None
        with _held_lock:
            _held.discard(holder.token)
        try:
            # A non-zero exit means the lock is no longer ours (gone, or broken by someone else).
            self.ctx.runner.run(
                self._host,
                dlock.release_command(self._work_dir, self.key, holder.token, self._sudo),
            )
            return
        except BlueGreenError as exc:
            where = dlock.lock_dir(self._work_dir, self.key)
            self.release_error = (
                f"the lock {where} on {self._host} could not be removed ({exc}); it is stale "
                "now: the next deploy or switch reports it, and breakLock clears it"
            )
        log.warning("%s: %s", self.app, self.release_error)


# How long a switch waits for another app's switch to finish with haproxy.cfg before refusing.
# That one holds it from its re-plan to its verify (seconds), or, when its verify times out
# (traffic.VERIFY_TIMEOUT_S, 15 s), to its restore: long enough to outlast that, still bounded.
CFG_LOCK_WAIT_S = 20.0


def cfg_lock(
    ctx: Context, app: str, operation: str, path: str, *, break_lock: bool = False
) -> OperationLock:
    """The lock of one file HAProxy loads (`path`, the one a switch replaces): one writer (and one
    reload) at a time for every app whose lines it holds; apps whose lines live in other files
    switch freely. Taken after the app's lock, so the order is always app, then cfg."""
    return OperationLock(ctx, app, operation, break_lock=break_lock, wait_s=CFG_LOCK_WAIT_S,
                         key=dlock.cfg_lock_key(path), what=f"haproxy.cfg ({path})")  # fmt: skip
