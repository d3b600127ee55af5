"""Every file HAProxy loads, against the real lab: its HAProxy runs with `-f haproxy.cfg -f conf.d`
(the lab's config lists both in `config_files`). A second app, `confd`, lives entirely in
conf.d/50-confd.cfg (its own frontend on port 8082, its backends to the same BLUE and GREEN app
hosts): status reads it, a switch edits only that file (haproxy.cfg byte-identical), a file that
fails `haproxy -c` elsewhere leaves every file unchanged, and a directory HAProxy loads but
`config_files` misses makes status uncertain and the switch refuse."""

from __future__ import annotations

import json
import time

import pytest

from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, load_config
from bluegreen.errors import HAProxyConfigError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.service import Service, SwitchRequest

from .fault_tools import app_of_its_own, app_of_its_own_cfg

pytestmark = pytest.mark.lab
APP, CONFD = "jw-attendant", "confd"
CFG = "/etc/haproxy/haproxy.cfg"
CONF_D = "/etc/haproxy/conf.d"
CONFD_FILE = f"{CONF_D}/50-confd.cfg"
PORT = 8082
CONFD_CFG = app_of_its_own_cfg(
    CONFD, PORT, "An app of its own in a file of the directory HAProxy loads."
)
# Parsed by bluegreen like any backend, refused by `haproxy -c`.
BROKEN_CFG = "backend broken\n    balance no-such-algorithm\n"


def confd_config(lab_info: LabInfo, files: tuple[str, ...] | None = None) -> Config:
    config = load_config(lab_info.config_path)
    own = config.apps[APP].model_copy(update={"allow_unapproved": True, "watch_s": 1.0})
    confd = app_of_its_own(own, CONFD)
    haproxy = config.haproxy
    if files is not None:
        haproxy = haproxy.model_copy(update={"config_files": files})
    return config.model_copy(update={"haproxy": haproxy, "apps": {APP: own, CONFD: confd}})


def write(lab: Lab, path: str, text: str, *, reload: bool = True) -> None:
    script = 'printf "%s" "$1" > "$2"' + (" && haproxy-reload" if reload else "")
    lab.exec("haproxy", ["sh", "-c", script, "-", text, path])


# The checks read the HAProxy host over the tool's own SSH connection (`docker exec` output is
# sometimes lost on this loaded machine, which would be a false failure).


def through(service: Service, port: int) -> str:
    """The colour a new request through the frontend on `port` reaches (curl on the host)."""
    url = f"http://127.0.0.1:{port}/health"
    hp = service.config.haproxy.ssh
    answer = service.runner.run(hp, Command.of("curl", "-s", "--max-time", "3", url), timeout=10)
    try:
        return str(json.loads(answer.stdout)["color"])
    except ValueError:
        return f"no answer (exit {answer.exit_status}): {answer.stdout[:80]!r}"


def read(service: Service, path: str) -> bytes | None:
    return service.runner.read_file(service.config.haproxy.ssh, path)


def add_confd(lab: Lab, service: Service) -> None:
    write(lab, CONFD_FILE, CONFD_CFG)
    deadline = time.monotonic() + 30
    while through(service, PORT) != "blue":
        assert time.monotonic() < deadline, "the conf.d frontend never answered"
        time.sleep(0.2)


def test_an_app_in_a_conf_d_file_is_switched_by_editing_only_that_file(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    with Service(confd_config(lab_info)) as service:
        add_confd(fresh_lab, service)
        status = service.status(CONFD)
        assert status.certain, status.problems
        assert status.live and status.live.color == "blue"
        assert not status.routing.notes  # the running HAProxy's -f list was read, and matches
        own = service.status(APP)
        assert own.certain and own.live and own.live.color == "blue", own.problems
        main_before = read(service, CFG)

        plan = service.plan_switch(CONFD)
        assert plan.cfg_file == CONFD_FILE
        result = service.switch(CONFD, SwitchRequest(require_approval=False))
        assert result.ok, result.error

        assert read(service, CFG) == main_before  # byte-identical
        after = CONFD_CFG.replace("default_backend bk_confd_blue", "default_backend bk_confd_green")
        assert read(service, CONFD_FILE) == after.encode()
        assert through(service, PORT) == "green"
        assert through(service, 80) == "blue"  # the other app, in the other file, stays
        assert not any(p.endswith(".bluegreen-candidate") for p in listing(service))
        status = service.status(CONFD)
        assert status.certain and status.live and status.live.color == "green", status.problems


def listing(service: Service) -> list[str]:
    hp = service.config.haproxy.ssh
    answer = service.runner.run(hp, Command.of("ls", "-a", CONF_D, "/etc/haproxy"), timeout=10)
    return answer.stdout.split()


def test_a_file_failing_haproxy_c_elsewhere_leaves_every_file_unchanged(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    """The candidate is checked together with every other file HAProxy loads: a broken file in
    conf.d (written, not reloaded: status says so) fails the check, so nothing is replaced."""
    with Service(confd_config(lab_info)) as service:
        add_confd(fresh_lab, service)
        write(fresh_lab, f"{CONF_D}/60-broken.cfg", BROKEN_CFG, reload=False)
        before = {path: read(service, path) for path in (CFG, CONFD_FILE)}
        # Status sees the conf.d file written after the worker started, and checks every file.
        status = service.status(CONFD)
        assert not status.certain
        assert any("not reloaded" in p for p in status.problems), status.problems
        assert any("does not pass `haproxy -c`" in p for p in status.problems), status.problems

        result = service.switch(CONFD, SwitchRequest(require_approval=False))
        assert not result.ok and not result.executed
        assert "haproxy -c" in (result.error or ""), result.error
        check = next(step for step in result.steps if step.name == "check-cfg")
        assert f"{CONF_D}/60-broken.cfg" in (check.output_tail or ""), check  # read by the check

        assert {path: read(service, path) for path in before} == before
        assert not any(p.endswith(".bluegreen-candidate") for p in listing(service))
        assert through(service, PORT) == "blue"


def test_a_directory_haproxy_loads_but_config_files_misses_refuses(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    """The running HAProxy's -f list names conf.d; a config listing only haproxy.cfg would read
    an incomplete configuration: status is uncertain and says what to set, the switch refuses."""
    with Service(confd_config(lab_info, files=(CFG,))) as service:
        add_confd(fresh_lab, service)
        status = service.status(APP)
        assert not status.certain and status.live is None
        problem = next(p for p in status.routing.problems if "config_files" in p)
        assert CONF_D in problem and f'Set config_files = ["{CFG}", "{CONF_D}"]' in problem
        before = read(service, CFG)
        with pytest.raises(HAProxyConfigError, match="config_files"):
            service.switch(APP, SwitchRequest(require_approval=False))
        assert read(service, CFG) == before
        assert through(service, 80) == "blue"
