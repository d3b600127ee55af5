"""A scripted HAProxy host (or several: FakeHosts(nodes=2) with config_nodes()) + two app hosts
on the FakeRunner, for fast engine unit tests.

It interprets the few commands the engine sends (lock mkdir, backups, `haproxy -c`, reload,
curl probes, socat, history appends, the status snapshot) against the fake file system, so the
engine's real orchestration runs end to end without a network. Each HAProxy node has its own
files and its own running cfg. Faults are switched on by attributes.

The app hosts also answer a deploy's commands (git, df, backup, build, restart, restore): a
checkout changes `commits`, a restart makes it what the server runs (`serving`), a build on a
server in `build_fails` fails.

`FakeHosts(per_colour=3)` gives each colour a pool (blue1..blue3 at root@blue1.., green1..): the
config (`pool_config`) and the cfg (`pool_cfg`) list every server, and the health, commits and
request counters are kept per server name.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, parse_config
from bluegreen.errors import CommandTimeout, TransportError
from bluegreen.transport.fake import FakeRunner, Reply

HP = "root@haproxy"
HP2 = "root@haproxy2"  # the second HAProxy node of config_nodes()
BLUE = "root@blue"
GREEN = "root@green"
CFG_PATH = "/etc/haproxy/haproxy.cfg"
CONF_D = "/etc/haproxy/conf.d"
STATE = "/var/lib/haproxy/jw-deployment-state.json"
WORK = "/var/lib/bluegreen"
APP = "jw-attendant"
LAB_CFG = (Path(__file__).parents[1] / "data" / "haproxy" / "lab_style1.cfg").read_text()

CONFIG_TOML = f"""
[ssh]
known_hosts = "/dev/null"
use_agent = false
[haproxy]
ssh = "{HP}"
reload = ["/usr/local/sbin/haproxy-reload"]
work_dir = "{WORK}"
master_socket = "/run/haproxy/master.sock"
[apps.{APP}]
state_file = "{STATE}"
frontend = "http-in"
app_dir = "/opt/jw-attendant"
build = "python3 build.py"
restart = "supervisorctl restart jw-attendant"
allow_unapproved = true
drain_s = 0.1
watch_s = 0
health = {{ path = "/health", port = 3001, attempts = 2, interval_s = 0 }}
[apps.{APP}.servers.blue]
ssh = "{BLUE}"
address = "blue:3001"
[apps.{APP}.servers.green]
ssh = "{GREEN}"
address = "green:3001"
"""


def pool_toml(per_colour: int, min_healthy: int | None = None) -> str:
    """CONFIG_TOML with each colour a pool of `per_colour` servers (blue1 at root@blue1...)."""
    head = CONFIG_TOML[: CONFIG_TOML.index(f"[apps.{APP}.servers.blue]")]
    if min_healthy is not None:
        head = head.replace(
            "allow_unapproved = true", f"allow_unapproved = true\nmin_healthy = {min_healthy}"
        )
    tables = [
        f'[apps.{APP}.servers.{c}]\nbackend = "bk_{c}"\n'
        + "".join(
            f'[[apps.{APP}.servers.{c}.pool]]\nserver = "{c}{i}"\nssh = "root@{c}{i}"\n'
            f'address = "{c}{i}:3001"\n'
            for i in range(1, per_colour + 1)
        )
        for c in ("blue", "green")
    ]
    return head + "".join(tables)


def pool_cfg(per_colour: int) -> str:
    """LAB_CFG with every server of each colour's pool in its backend."""
    text = LAB_CFG
    for c in ("blue", "green"):
        lines = "".join(
            f"    server {c}{i} {c}{i}:3001 check inter 1s fall 2 rise 2\n"
            for i in range(1, per_colour + 1)
        )
        text = text.replace(f"    server {c} {c}:3001 check inter 1s fall 2 rise 2\n", lines)
    return text


def pool_config(per_colour: int, min_healthy: int | None = None) -> Config:
    return parse_config(pool_toml(per_colour, min_healthy), "test")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cfg_read_reply(
    runner: FakeRunner, host: str, paths: Sequence[str], argv: Sequence[str] | None
) -> Reply:
    """What the HAProxy host answers to `read_cfg` (domain/haproxy_files.py): each path's bytes,
    a directory's `*.cfg` files (a fake directory: the files under its path), then `argv`, the
    running HAProxy's arguments (None: unreadable)."""
    lines = ["bluegreen-cfg-read 1", *file_lines(runner, host, paths), cmdline_line(argv)]
    return Reply(stdout="\n".join(lines) + "\n")


def snapshot_reply(
    runner: FakeRunner, host: str, args: Sequence[str], running: Sequence[str] | None
) -> Reply:
    """The status snapshot (domain/snapshot.py) from the fake files: no clocks, no runtime API
    (`args`: the script's "$1"...: socket, query, the count of config files, them, the files)."""
    count = int(args[2])
    lines = ["bluegreen-snapshot 1", *file_lines(runner, host, args[3 + count :])]
    lines += [cmdline_line(running), "runtime 1", "socat: not found"]
    return Reply(stdout="\n".join(lines) + "\n")


def cmdline_line(argv: Sequence[str] | None) -> str:
    return "cmdline " + (_b64("\0".join(argv).encode() + b"\0") if argv else "-")


def file_lines(runner: FakeRunner, host: str, paths: Sequence[str]) -> list[str]:
    """A `file` line per path; a fake directory (files under its path) as HAProxy reads one."""
    lines = []
    for path in paths:
        data = runner.file(host, path)
        prefix = path.rstrip("/") + "/"
        names = sorted(p[len(prefix) :] for p in runner.paths(host) if p.startswith(prefix))
        if data is None and names:  # a directory (an empty one: its "<path>/" entry alone)
            lines.append("file dir")
            lines += [f"entry {_b64(n.encode())} {_b64(runner.file(host, prefix + n) or b'')}"
                      for n in names if "/" not in n and n.endswith(".cfg") and n[0] != "."]  # fmt: skip
        else:
            lines.append("file -" if data is None else f"file {_b64(data)}")
    return lines


def serve_cfg_reads(
    runner: FakeRunner, host: str = HP, argv: Sequence[str] | None = ("haproxy", "-f", CFG_PATH)
) -> None:
    """Script `host` to answer `read_cfg` from its fake files (see cfg_read_reply)."""
    runner.on(lambda c: "bluegreen-cfg-read" in c.argv, host=host,
              respond=lambda h, c: cfg_read_reply(runner, h, c.argv[5:], argv))  # fmt: skip


def nodes_toml(count: int, base: str = CONFIG_TOML) -> str:
    """`base` with [haproxy.nodes]: `haproxy` (HP, the primary), `haproxy2` (HP2), ..."""
    hosts = node_hosts(count)
    tables = "".join(f'[haproxy.nodes.{host.split("@")[1]}]\nssh = "{host}"\n' for host in hosts)
    text = base.replace(f'ssh = "{HP}"\n', "", 1)
    return text.replace(f"[apps.{APP}]\n", f"{tables}[apps.{APP}]\n", 1)


def node_hosts(count: int) -> list[str]:
    return [HP, HP2, *(f"root@haproxy{i}" for i in range(3, count + 1))][:count]


def config(**app_changes: object) -> Config:
    return _config(CONFIG_TOML, app_changes)


def config_nodes(count: int, **app_changes: object) -> Config:
    """config() with `count` HAProxy nodes (HP the primary, HP2, ...)."""
    return _config(nodes_toml(count), app_changes)


def _config(text: str, app_changes: dict[str, object]) -> Config:
    cfg = parse_config(text, "test")
    if not app_changes:
        return cfg
    app = cfg.apps[APP].model_copy(update=app_changes)
    return cfg.model_copy(update={"apps": {APP: app}})


class FakeHosts:
    def __init__(self, nodes: int = 1, per_colour: int = 1) -> None:
        self.runner = FakeRunner()
        self.nodes = node_hosts(nodes)
        cfg = LAB_CFG if per_colour == 1 else pool_cfg(per_colour)
        for node in self.nodes:
            self.runner.put_file(node, CFG_PATH, cfg)
        self.running = dict.fromkeys(self.nodes, cfg)  # what each node's HAProxy serves from
        self.down: set[str] = set()  # nodes that cannot be reached over SSH
        # Server names: the colour itself, or blue1..blueN in a pool.
        self.names = {
            c: [c] if per_colour == 1 else [f"{c}{i}" for i in range(1, per_colour + 1)]
            for c in ("blue", "green")
        }
        self.healthy = {n: True for names in self.names.values() for n in names}
        self.check_fails = False
        self.check_fails_on: set[str] = set()  # nodes where `haproxy -c` refuses the candidate
        self.reload_fails = 0  # how many reloads fail from now on
        self.frontend_stuck = False  # the frontend keeps answering the old LIVE
        self.master_cli_fails = False  # the master socket refuses us (e.g. mode 600, not root)
        self.check_missing = False  # `haproxy` is not in the login's PATH
        self.prune_fails = False  # removing expired approval tokens is refused
        self.unmeasurable: set[str] = set()  # servers whose probe times out on our SSH path
        self.commits = {  # checked out (and running)
            n: ("a1" if n.startswith("blue") else "b2") * 20
            for names in self.names.values()
            for n in names
        }
        self.requests = dict.fromkeys(self.healthy, 0)  # `show stat` stot of each server
        self.serving: dict[str, str] = {}  # a server restarted on another checkout runs this
        self.origin = "c3" * 20  # what the branch resolves to on origin
        self.build_fails: set[str] = set()  # servers whose build fails
        self.on_build: Callable[[str], object] | None = None  # called with the server's name
        self.unreachable: set[str] = set()  # app servers SSH cannot reach
        self.backups: dict[str, str] = {}  # each server's backup: the commit it holds
        # The running HAProxy's arguments (None: /proc or the runtime API cannot be read).
        self.running_args: tuple[str, ...] | None = ("haproxy", "-W", "-f", CFG_PATH)
        # Answer status's snapshot (from the fake files; always with several nodes, with clocks
        # that tell a node's cfg edited and not reloaded).
        self.snapshots = nodes > 1
        self.checks: list[tuple[str, ...]] = []  # every `haproxy -c` argv
        self.runner.on(lambda c: True, respond=self.respond)

    @property
    def running_cfg(self) -> str:
        """What the primary's running HAProxy serves from."""
        return self.running[HP]

    @running_cfg.setter
    def running_cfg(self, text: str) -> None:
        self.running[HP] = text

    def live_color(self, node: str = HP) -> str:
        match = re.search(r"default_backend bk_(\w+)", self.running[node])
        assert match
        return match.group(1)

    def loaded_text(self, node: str = HP) -> str:
        """What a reload loads: haproxy.cfg, then the *.cfg files of conf.d (CONF_D)."""
        paths = self.runner.paths(node)
        names = sorted(p for p in paths if p.startswith(CONF_D + "/") and p.endswith(".cfg"))
        return "".join((self.runner.file(node, p) or b"").decode() for p in [CFG_PATH, *names])

    def take_down(self, node: str) -> None:
        """`node` stops answering SSH: commands and file reads and writes fail."""
        self.down.add(node)
        for path in {CFG_PATH, STATE, *self.runner.paths(node)}:
            self.runner.fail_file(node, path, TransportError(f"{node} is down", host=node))

    def respond(self, host: str, command: Command) -> Reply:
        if host in self.down:
            raise TransportError(f"connecting to {host} timed out", host=host)
        argv = command.argv
        name = host.split("@")[1]
        if name in self.commits:
            return self.app_host(name, command)
        if argv[:2] == ("sh", "-c"):
            return self.script(host, argv[3], argv[4:], command.stdin or b"")
        if argv[0] == "git" and "rev-parse" in argv:  # the commit checked out (a dry run)
            return Reply(stdout=self.commits[host.split("@")[1]] + "\n")
        if argv[0] == "curl":
            return self.curl(argv[-1]) if host == HP else self.curl_on(host, argv[-1])
        if argv[0] == "haproxy" and self.check_missing:
            return Reply(exit_status=127, stderr="sh: 1: haproxy: not found")
        if argv[0] == "haproxy":
            self.checks.append(argv)
            fails = self.check_fails or host in self.check_fails_on
            return Reply(exit_status=1, stderr="[ALERT] bad cfg") if fails else Reply()
        if argv[0] == "/usr/local/sbin/haproxy-reload":
            if self.reload_fails:
                self.reload_fails -= 1
                return Reply(exit_status=1, stderr="reload failed")
            self.running[host] = self.loaded_text(host)
            return Reply(stdout="haproxy-reload: new worker 42 running\n")
        if argv[0] == "socat" and self.master_cli_fails:
            return Reply(
                exit_status=1, stderr="connect(5, AF=1 /run/haproxy/master.sock): Permission denied"
            )
        if argv[0] == "socat" and command.stdin == b"show stat\n":
            rows = "".join(  # HAProxy's own checks see an unhealthy server DOWN
                f"bk_{name.rstrip('0123456789')},{name},{n},3,"
                f"{'UP' if self.healthy[name] else 'DOWN'},2\n"
                for name, n in self.requests.items()
            )
            return Reply(stdout="# pxname,svname,stot,rate,status,type\n" + rows)
        if argv[0] == "socat":
            return Reply(
                stdout="#<PID> <type> <reloads> <uptime> <version>\n1 master 0 [failed: 0] 0d00h00m01s 2.6\n# workers\n42 worker 0 0d00h00m01s 2.6\n# old workers\n"
            )
        if argv[0] == "ls":  # the approvals directory: each entry's name, directories once
            prefix = argv[-1].rstrip("/") + "/"
            names = {p[len(prefix) :].split("/")[0] for p in self.runner.paths(HP)
                     if p.startswith(prefix) and len(p) > len(prefix)}  # fmt: skip
            if not names:
                return Reply(exit_status=2, stderr=f"ls: cannot access '{argv[-1]}'")
            return Reply(stdout="".join(f"{n}\n" for n in sorted(names)))
        if argv[0] in ("rm", "test", "mkdir"):
            if argv[0] == "test":
                return Reply(
                    exit_status=0 if self.runner.file(HP, argv[-1] + "/") is not None else 1
                )
            if argv[0] == "mkdir":
                return Reply()
            for path in self.runner.paths(host):
                if path == argv[-1] or path.startswith(argv[-1].rstrip("/") + "/"):
                    self.runner.remove_file(host, path)
            return Reply()
        raise AssertionError(f"unexpected command on {host}: {command.render()}")

    def app_host(self, name: str, command: Command) -> Reply:
        """A deploy's (and status') commands on the app host `name`."""
        if name in self.unreachable:
            raise TransportError(
                f"ssh: connect to host {name} port 22: No route to host", host=name
            )
        argv, script = command.argv, command.argv[3] if command.argv[:2] == ("sh", "-c") else None
        if script == "bluegreen-deployed":  # status, the switch plan
            return Reply(stdout=f"{self.commits[name]} HEAD@{{2025-12-21T10:00:00+00:00}}\n")
        if argv[-2:] == ("--verify", "HEAD"):  # a deploy's preflight
            return Reply(stdout=f"{self.commits[name]}\n")
        if argv[:1] == ("df",):
            return Reply(stdout="Filesystem 1048576-blocks Used Available Capacity Mounted\n"
                                "/dev/sda1 100000 25000 75000 25% /\n")  # fmt: skip
        if script == "bluegreen-backup":
            self.backups[name] = self.commits[name]
            return Reply()
        if script == "bluegreen-resolve":
            return Reply(stdout=self.origin + "\n")
        if script == "bluegreen-restore":
            self.commits[name] = self.backups[name]
            return Reply()
        if "checkout" in argv:
            self.commits[name] = argv[-1]
            return Reply()
        if command.shell is not None and "build" in command.shell:
            if self.on_build is not None:
                self.on_build(name)
            if name in self.build_fails:
                return Reply(exit_status=2, stderr="npm ERR! build failed")
            return Reply()
        if command.shell is not None and "restart" in command.shell:
            self.serving[name] = self.commits[name]
            return Reply()
        quiet = {"status", "fetch", "clean"}  # git reads and steps that have nothing to say
        if command.shell is not None or argv[:1] == ("tail",) or quiet & set(argv):
            return Reply()
        raise AssertionError(f"unexpected command on {name}: {command.render()}")

    def script(self, host: str, name: str, args: tuple[str, ...], stdin: bytes) -> Reply:
        """A fixed script, told apart by its name (its $0); `args` are "$1", "$2", ..."""
        if name == "bluegreen-snapshot" and self.snapshots:
            reply = snapshot_reply(self.runner, host, args, self.running_args)
            return reply if len(self.nodes) == 1 else self.with_clocks(host, reply)
        if name == "bluegreen-cfg-read":  # every file HAProxy loads (read_cfg)
            return cfg_read_reply(self.runner, host, args[1:], self.running_args)
        if name == "bluegreen-lock":
            if self.runner.file(host, args[0] + "/") is not None:
                return Reply(exit_status=1)
            self.runner.put_file(host, args[0] + "/", b"")
            self.runner.put_file(host, args[0] + "/holder.json", stdin)
            return Reply()
        if name == "bluegreen-unlock":
            holder = self.runner.file(host, args[0] + "/holder.json") or b""
            if args[1].encode() in holder:
                self.runner.remove_file(host, args[0] + "/")
                self.runner.remove_file(host, args[0] + "/holder.json")
                return Reply()
            return Reply(exit_status=1)
        if name == "bluegreen-history":
            old = self.runner.file(host, args[0]) or b""
            self.runner.put_file(host, args[0], old + stdin)
            return Reply()
        if name == "bluegreen-cfg-backup":
            self.runner.put_file(
                host, f"{args[1]}/{args[2]}", self.runner.file(host, args[0]) or b""
            )
            return Reply()
        if name == "bluegreen-approve":
            if self.runner.file(host, args[0] + "/") is not None:
                return Reply(exit_status=1)
            self.runner.put_file(host, args[0] + "/", b"")
            self.runner.put_file(host, args[0] + "/by", stdin)
            self.runner.put_file(host, args[0] + "/channel", args[1].encode())
            return Reply()
        if name == "bluegreen-prune-approvals" and self.prune_fails:
            return Reply(exit_status=1, stderr="rm: cannot remove: Permission denied")
        if name == "bluegreen-prune-approvals":
            directory, removed = args[0], []
            for token in args[1:]:
                answered = (self.runner.file(host, f"{directory}/{token}.{m}/") is not None
                            for m in ("used", "approved"))  # fmt: skip
                if not any(answered):
                    self.runner.remove_file(host, f"{directory}/{token}.json")
                    removed.append(token)
            return Reply(stdout="".join(f"{t}\n" for t in removed))
        if name == "bluegreen-consume":
            if self.runner.file(host, args[0] + "/") is not None:
                return Reply(exit_status=1)
            self.runner.put_file(host, args[0] + "/", b"")
            return Reply()
        raise AssertionError(f"unexpected script on {host}: {name}")

    def with_clocks(self, host: str, reply: Reply) -> Reply:
        """The snapshot with clocks: a cfg changed after the worker started when it is not the
        one the node's HAProxy runs (edited and not reloaded)."""
        edited = self.loaded_text(host) != self.running[host]
        clocks = ["now 10000.0", "uptime 1000.0", "ticks 100", f"workerstart {500 * 100}",
                  f"cfgmtime {9999.0 if edited else 9000.0}"]  # fmt: skip
        magic, rest = reply.stdout.split("\n", 1)
        return Reply(stdout="\n".join([magic, *clocks, rest]))

    def curl(self, url: str) -> Reply:
        return self.curl_on(HP, url)

    def curl_on(self, node: str, url: str) -> Reply:
        """A GET from `node`: its own frontend answers from its running cfg (a healthy server of
        the LIVE colour)."""
        if url.startswith("http://127.0.0.1"):
            names = self.names[self.live_color(node) if not self.frontend_stuck else "blue"]
            name = next((n for n in names if self.healthy[n]), names[0])
        else:
            name = url.split("//")[1].split(":")[0]
        if name in self.unmeasurable:
            raise CommandTimeout(f"`curl {url}` on {HP} did not finish", host=HP)
        if not self.healthy[name]:
            return Reply(stdout="\n__bluegreen_probe__ 503 0.001\n")
        color = name.rstrip("0123456789")
        commit = self.serving.get(name, self.commits[name])
        body = f'{{"status": "ok", "color": "{color}", "commit": "{commit[:7]}"}}'
        return Reply(stdout=f"{body}\n__bluegreen_probe__ 200 0.002\n")
