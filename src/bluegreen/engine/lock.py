"""The operation lock (deploy and switch share it), held on the HAProxy host.

Acquire is one atomic `mkdir`; the holder's details are written inside. A stale lock is never
broken silently: only with break_lock=True, and only when it really is stale.
"""

from __future__ import annotations

import socket
import time
from types import TracebackType

from bluegreen.domain import lock as dlock
from bluegreen.engine.context import Context, StepEvent
from bluegreen.errors import LockedError


class OperationLock:
    def __init__(
        self,
        ctx: Context,
        app: str,
        operation: str,
        *,
        break_lock: bool = False,
        wait_s: float = 0.0,
    ) -> None:
        self.ctx = ctx
        self.app = app
        self.operation = operation
        self.break_lock = break_lock
        self.wait_s = wait_s
        self.holder: dlock.Holder | None = None
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
        broke = False
        while True:
            holder = dlock.new_holder(self.operation, self.app, self.ctx.now())
            result = self.ctx.runner.run(
                self._host, dlock.acquire_command(self._work_dir, self.app, holder, self._sudo)
            )
            if result.ok:
                self.holder = holder
                return
            current = self.current()
            # No readable holder: a lock mid-creation, or one left corrupt. Counts as stale.
            stale = current is None or current.is_stale(self.ctx.now(), socket.gethostname())
            if stale and self.break_lock and not broke:
                self._break(current)
                broke = True
                continue
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            where = dlock.lock_dir(self._work_dir, self.app)
            if current is None:
                raise LockedError(
                    f"the {self.app} lock at {where} exists but names no holder",
                    hint="if no deploy or switch is running, retry with breakLock",
                )
            if stale:
                raise LockedError(
                    f"{self.app} is locked by a STALE {current.describe()}",
                    hint="the holder is gone or far past its time: retry with breakLock to break it",
                )
            raise LockedError(
                f"{self.app} is locked: {current.describe()}",
                hint="wait for it to finish (the lock is released on success and on failure)",
            )

    def _break(self, holder: dlock.Holder | None) -> None:
        who = holder.describe() if holder else "an unreadable holder"
        self.ctx.progress(StepEvent("lock", "info", f"breaking stale lock of {who}"))
        self.ctx.runner.run(self._host, dlock.break_command(self._work_dir, self.app, self._sudo))

    def current(self) -> dlock.Holder | None:
        raw = self.ctx.runner.read_file(self._host, dlock.holder_path(self._work_dir, self.app))
        return dlock.parse_holder(raw)

    def release(self) -> None:
        if self.holder is None:
            return
        self.ctx.runner.run(
            self._host,
            dlock.release_command(self._work_dir, self.app, self.holder.token, self._sudo),
        )
        self.holder = None
