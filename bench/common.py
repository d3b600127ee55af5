"""Shared helpers of the benchmarks (`bench.status`, `bench.deploy`, `bench.switch`): timing and
statistics, the round scheduler, tables, machine facts, bringing the benchmark's own lab up and
down, raw paramiko baselines and commands, and a whole-process profiler.

Every benchmark measures the tool and its baseline in the same run, in interleaved rounds
(`interleave`: no arm always first or last), so machine noise and warm-up effects hit both sides
equally.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import math
import os
import platform
import pstats
import re
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bluegreen.lab.topology import Topology

T = TypeVar("T")

APP = "jw-attendant"  # the lab's app
DEFAULT_PREFIX = "bluegreen-bench"  # bench.status' lab
BENCH_PREFIX = "bluegreen-bench2"  # the lab of bench.deploy and bench.switch
# Labs that belong to other people and processes on this machine: never up or down them here.
FOREIGN_PREFIXES = ("bluegreen-lab", "bluegreen-test")

Say = Callable[[str], None]


def say(message: str) -> None:
    """Progress lines go to stderr so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


# --- timing and statistics --------------------------------------------------------------------


def now() -> float:
    return time.perf_counter()


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(elapsed milliseconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return ms_since(start), result


def median(values: Sequence[float]) -> float:
    """The median; nan for no values (a table shows "-")."""
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always one of the measured values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Series:
    """Samples of one measured thing, in milliseconds."""

    name: str
    samples: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # attempts that raised: no sample

    def add(self, ms: float) -> None:
        self.samples.append(ms)

    def fail(self, exc: BaseException) -> None:
        self.failures.append(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "median_ms": round(self.median, 3),
            "p90_ms": round(self.p90, 3),
            "min_ms": round(min(self.samples), 3) if self.samples else None,
            "max_ms": round(max(self.samples), 3) if self.samples else None,
            "samples_ms": [round(s, 3) for s in self.samples],
            "failures": self.failures,
        }


@dataclass
class Comparison:
    """One table row: the tool against its baseline; ratio of medians against a target."""

    metric: str
    tool: Series
    baseline: Series
    target: float | None  # the largest acceptable ratio; None: informational row
    sources: tuple[str, ...] = ()  # keys of the checked results behind this row's numbers
    errors: int = 0  # results that were wrong (e.g. a read failed): the timing is not valid
    checked: int = 0  # results checked for errors

    @property
    def ratio(self) -> float:
        base = self.baseline.median
        return self.tool.median / base if base and not math.isnan(base) else math.nan

    @property
    def verdict(self) -> str:
        """PASS/MISS/info; ERROR when 10% or more of the checked results were wrong (the timing
        then measures failures); a few wrong results are shown next to the verdict instead."""
        if self.errors and self.errors * 10 >= max(self.checked, 1):
            return "ERROR"
        if self.target is None:
            return "info"
        return "PASS" if self.ratio <= self.target else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "tool": self.tool.to_json(),
            "baseline": self.baseline.to_json(),
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "verdict": self.verdict,
            "sources": list(self.sources),
            "errors": self.errors,
            "checked": self.checked,
        }


def interleave(
    rounds: int,
    arms: Sequence[tuple[Series, Callable[[], float]]],
    *,
    progress: Say | None = None,
    label: str = "",
) -> None:
    """Run every arm once per round, recording the milliseconds it returns.

    An arm times itself (so it can leave setup and teardown out). The order rotates every round
    and is reversed every other full rotation, so no arm always runs first (after an idle
    moment) or last, nor always right after the same other arm: each arm goes first, and last,
    in the same number of rounds over every 2 x len(arms) rounds (with two arms: AB BA BA AB).
    An arm that raises records a failure (no sample) and the run goes on. With `progress`, one
    line per arm and round (`label` before it).
    """
    for index in range(rounds):
        shift = index % len(arms)
        order = list(arms[shift:]) + list(arms[:shift])
        if (index // len(arms)) % 2:
            order.reverse()
        for series, arm in order:
            where = f"{label}round {index + 1}/{rounds} {series.name}"
            try:
                ms = arm()
            except Exception as exc:
                series.fail(exc)
                if progress:
                    progress(f"{where}: FAILED {exc}")
                continue
            series.add(ms)
            if progress:
                progress(f"{where}: {ms:.0f} ms")


# --- output -----------------------------------------------------------------------------------


def fmt_ms(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def format_grid(
    header: Sequence[str], body: Sequence[Sequence[str]], *, free_last: bool = False
) -> str:
    """A plain table: the first column left-aligned, the others right-aligned; with `free_last`
    the last column is free text (a verdict), left-aligned and not padded."""
    rows = [list(header), *(list(r) for r in body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    aligned = len(header) - 1 if free_last else len(header)

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:aligned], widths[1:aligned], strict=True)]
        return "  ".join([first, *rest, *cells[aligned:]]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def format_table(rows: Sequence[Comparison]) -> str:
    header = (
        "metric",
        "n",
        "tool med ms",
        "tool p90 ms",
        "base med ms",
        "base p90 ms",
        "ratio",
        "target",
        "verdict",
    )
    body = [
        (
            row.metric,
            str(row.tool.n),
            fmt_ms(row.tool.median, 1),
            fmt_ms(row.tool.p90, 1),
            fmt_ms(row.baseline.median, 1),
            fmt_ms(row.baseline.p90, 1),
            "-" if math.isnan(row.ratio) else f"{row.ratio:.2f}x",
            "-" if row.target is None else f"<= {row.target:g}x",
            row.verdict + (f" ({row.errors}/{row.checked} bad)" if row.errors else ""),
        )
        for row in rows
    ]
    return format_grid(header, body, free_last=True)


def format_facts(facts: dict[str, Any]) -> str:
    width = max(len(k) for k in facts)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in facts.items())


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n")


@dataclass
class Measured:
    """One benchmark run in its lab: what `run` returned, and the facts around it."""

    result: Any
    facts: dict[str, Any]
    end_load: str
    started: float
    measuring_s: float
    logs: LogCounter


def measure_in_lab(
    args: argparse.Namespace, run: Callable[[argparse.Namespace, Any], Any]
) -> Measured:
    """Bring the lab up (or reuse it), call `run(args, lab_info)`, take the lab down (unless
    --keep); paramiko's warnings are counted instead of printed."""
    logs = capture_logs("paramiko")
    facts = machine_facts()
    started = time.monotonic()
    with lab_session(args.prefix, args.state_dir, reuse=args.reuse, keep=args.keep) as info:
        measuring = time.monotonic()
        result = run(args, info)
        measuring_s = time.monotonic() - measuring
    end_load = machine_facts()["loadavg_1/5/15"]
    return Measured(result, facts, end_load, started, measuring_s, logs)


def print_header(title: str, measured: Measured) -> None:
    """The title, the machine facts, and a warning when the machine was busy."""
    facts, end_load = measured.facts, measured.end_load
    print(title)
    print(
        format_facts(
            {**facts, "loadavg at end": end_load, "measuring_s": f"{measured.measuring_s:.1f}"}
        )
    )
    busy = max(float(facts["loadavg_1/5/15"].split("/")[0]), float(end_load.split("/")[0]))
    if busy > facts["nproc"]:
        print(f"NOTE: the machine was busy (1-min load {busy:.1f} > nproc): timings are noisy")


def failure_notes(series: Iterable[Series], measured: Measured) -> list[str]:
    """A line per series with failed attempts, then what paramiko logged (counted)."""
    notes = [
        f"FAILED {len(s.failures)} x '{s.name}': {s.failures[0]}" for s in series if s.failures
    ]
    if measured.logs.summary():
        notes += ["paramiko logged:"] + [f"  {line}" for line in measured.logs.summary()]
    return list(dict.fromkeys(notes))


def finish(
    benchmark: str,
    args: argparse.Namespace,
    measured: Measured,
    rows: Sequence[Comparison],
    **extra: Any,
) -> None:
    """The end every benchmark shares: the total time, and with --json the results file (the
    machine, the arguments, the rows, then what is particular to the benchmark)."""
    total_s = time.monotonic() - measured.started
    say(f"total {total_s:.1f}s (lab included)")
    if not args.json_path:
        return
    write_json(
        args.json_path,
        {
            "benchmark": benchmark,
            "machine": {**measured.facts, "loadavg at end": measured.end_load},
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "measuring_s": round(measured.measuring_s, 2),
            "total_s": round(total_s, 2),
            "rows": [row.to_json() for row in rows],
            **extra,
        },
    )
    say(f"results written to {args.json_path}")


def machine_facts() -> dict[str, Any]:
    import paramiko

    cpu = ""
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    load = "/".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": cpu or platform.processor() or "?",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "paramiko": paramiko.__version__,
        "platform": platform.platform(),
        "loadavg_1/5/15": load,
    }


# --- the benchmark's own lab ------------------------------------------------------------------


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help="lab prefix (default: %(default)s)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the lab keeps its key, known_hosts and config "
        "(default: $TMPDIR/bluegreen-bench/<prefix>)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="use the lab of this prefix when it is already up"
    )
    parser.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="also write results here")


def default_state_dir(prefix: str) -> Path:
    return Path(tempfile.gettempdir()) / "bluegreen-bench" / prefix


def check_prefix(prefix: str) -> None:
    if any(prefix == p or prefix.startswith(p) for p in FOREIGN_PREFIXES):
        raise SystemExit(
            f"refusing lab prefix {prefix!r}: labs named {'*, '.join(FOREIGN_PREFIXES)}* belong to "
            "others on this machine; pick your own (default: bluegreen-bench)"
        )


def _reusable(lab: Any) -> Any | None:
    """The LabInfo of a lab of this prefix that is up and running, else None."""
    from bluegreen.errors import LabError

    try:
        info = lab.info()
    except LabError:
        return None
    states = {host.container: lab.container_state(host.container) for host in info.hosts.values()}
    if all(state == "running" for state in states.values()):
        return info
    return None


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so `finally` blocks (lab down) still run."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def lab_session(
    prefix: str,
    state_dir: Path | None,
    *,
    reuse: bool,
    keep: bool,
    progress: Say = say,
    topology: Topology | None = None,
) -> Iterator[Any]:
    """Yield the LabInfo of the benchmark's own lab (single layout; `topology`: its HAProxy nodes
    and servers a colour, default one of each), brought up (or reused) for this run; down at the
    end, whatever happens, unless `keep`."""
    check_prefix(prefix)
    from bluegreen.lab.controller import Lab

    lab = Lab(prefix, state_dir or default_state_dir(prefix))
    with _sigterm_unwinds():
        try:
            info = _reusable(lab) if reuse else None
            if info is not None and info.topology != (topology or info.topology):
                progress(f"lab: {prefix} runs another topology, not reused")
                info = None
            if info is not None:
                progress(f"lab: reusing {prefix} ({info.config_path})")
            else:
                started = now()
                progress(f"lab: bringing up {prefix} in {lab.state_dir}")
                info = lab.up(
                    lambda msg: progress(f"lab: {msg}"), layout="single", topology=topology
                )
                progress(f"lab: up in {ms_since(started) / 1000:.1f}s")
            yield info
        finally:
            if keep:
                progress(f"lab: kept up ({prefix}); `--reuse` uses it next time")
            else:
                removed = lab.down()
                progress(f"lab: down ({removed} containers/networks removed)")


# --- raw paramiko: the baselines, and commands with their output --------------------------


@dataclass(frozen=True)
class RawTarget:
    """One lab host as plain paramiko reaches it: strict known_hosts, the lab's key, no agent."""

    hostname: str
    port: int
    username: str
    key_path: str
    known_hosts: str

    @classmethod
    def of(cls, ssh: str, *, key_path: str | Path, known_hosts: str | Path) -> RawTarget:
        """From the config's `user@host:port` form (the lab writes `root@127.0.0.1:PORT`)."""
        user, _, address = ssh.rpartition("@")
        host, _, port = address.rpartition(":")
        return cls(
            host or address, int(port or 22), user or "root", str(key_path), str(known_hosts)
        )


def raw_connect(target: RawTarget, *, nodelay: bool = False) -> Any:
    """A connected paramiko.SSHClient (RejectPolicy: an unknown host key is an error)."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(target.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = None
    if nodelay:  # as the project's transport does: no Nagle delay between small packets
        sock = socket.create_connection((target.hostname, target.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.connect(
        target.hostname,
        port=target.port,
        username=target.username,
        key_filename=target.key_path,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        sock=sock,
    )
    return client


def raw_exec(client: Any, command: str = "true") -> None:
    """One command on a fresh channel of an open connection, to its exit status (the round-trip
    baseline: its output is not read, so nothing is timed that a bare round trip does not do)."""
    channel = client.get_transport().open_session(timeout=10)
    try:
        channel.exec_command(command)
        status = channel.recv_exit_status()
    finally:
        channel.close()
    if status != 0:
        raise RuntimeError(f"`{command}` exited {status}")


def raw_run(client: Any, command: str, timeout: float = 120.0) -> tuple[int, str]:
    """One command on a fresh channel of an open paramiko connection: (exit status, output with
    stderr merged)."""
    channel = client.get_transport().open_session(timeout=10)
    try:
        channel.settimeout(timeout)
        channel.set_combine_stderr(True)
        channel.exec_command(command)
        chunks: list[bytes] = []
        while True:
            data = channel.recv(65536)
            if not data:
                break
            chunks.append(data)
        status = channel.recv_exit_status()
    finally:
        channel.close()
    return status, b"".join(chunks).decode(errors="replace")


def raw_check(client: Any, command: str, timeout: float = 120.0) -> str:
    status, output = raw_run(client, command, timeout)
    if status != 0:
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise RuntimeError(f"`{command}` exited {status}: {tail}")
    return output


def wait_for_ssh(hostport: str, timeout_s: float = 60.0) -> None:
    """Until sshd at host:port sends its banner (after the HAProxy container restarted)."""
    from bluegreen.errors import LabError
    from bluegreen.lab.readiness import wait_for_ssh_banner

    try:
        wait_for_ssh_banner(hostport, "the HAProxy host", timeout_s)
    except LabError as exc:
        raise RuntimeError(str(exc)) from exc


class LogCounter(logging.Handler):
    """Counts warnings and errors of a library logger instead of letting them flood stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[re.sub(r"\d+", "N", record.getMessage())[:200]] += 1

    def summary(self) -> list[str]:
        return [f"{count} x {message}" for message, count in self.counts.most_common(5)]


def capture_logs(name: str = "paramiko") -> LogCounter:
    counter = LogCounter()
    logger = logging.getLogger(name)
    logger.addHandler(counter)
    logger.propagate = False
    return counter


# --- profiling across threads -----------------------------------------------------------------


class ThreadProfiler:
    """cProfile for the calling thread and every thread started while it is active (status does
    its SSH reads in worker threads, which a plain cProfile.Profile never sees)."""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, _frame: FrameType, _event: str, _arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()

    def __enter__(self) -> ThreadProfiler:
        threading.setprofile(self._start_in_thread)
        main = cProfile.Profile()
        self._profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *_exc: object) -> None:
        threading.setprofile(None)
        for profile in self._profiles:
            profile.disable()

    def report(self, top: int = 25, sort: str = "tottime") -> str:
        out = io.StringIO()
        stats = pstats.Stats(self._profiles[0], stream=out)
        for profile in self._profiles[1:]:
            stats.add(profile)
        stats.strip_dirs().sort_stats(sort).print_stats(top)
        return out.getvalue()
