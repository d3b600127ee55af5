"""The README's least-privilege layout, for real: a login user `bluegreen` that is not root, owns
what the tool writes, and may run exactly two commands with sudo (the HAProxy reload, the app
restart). Status, deploy, a failed deploy with its restore, and a switch all work; nothing the
tool writes ends up owned by another user.

It runs in a lab of its own (the users and permissions it sets up would leak into other tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bluegreen.domain.config import load_config
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import APP_DIR
from bluegreen.service import Service, SwitchRequest
from tests.lab.fault_tools import own_lab

pytestmark = pytest.mark.lab

APP = "jw-attendant"
USER = "bluegreen"

# As root, once per host: the user (key login; '*' so sshd without PAM does not see a locked
# account) and the README's layout.
_USER = f"""set -eu
useradd --create-home --shell /bin/sh {USER}
usermod -p '*' {USER}
install -d -m 700 -o {USER} -g {USER} /home/{USER}/.ssh
install -m 600 -o {USER} -g {USER} /root/.ssh/authorized_keys /home/{USER}/.ssh/authorized_keys
"""
_HAPROXY = f"""set -eu
{_USER}
# haproxy.cfg owned by the user and its group (an atomic replace keeps owner and group, and only
# root may give a file away or to a group its owner is not in); its directory and the state
# file's directory group-writable for the rename.
chown {USER}: /etc/haproxy/haproxy.cfg
chgrp {USER} /etc/haproxy /var/lib/haproxy && chmod g+w /etc/haproxy /var/lib/haproxy
install -d -o {USER} -g {USER} /var/lib/bluegreen
# The runtime socket for the group (the cfg says so for the next start; the socket of the running
# HAProxy is changed in place). The master socket stays root's (mode 600).
sed -i 's|stats socket /run/haproxy/admin.sock mode 660 level admin|& group {USER}|' /etc/haproxy/haproxy.cfg
chgrp {USER} /run/haproxy/admin.sock
echo '{USER} ALL=(root) NOPASSWD: /usr/local/sbin/haproxy-reload' > /etc/sudoers.d/{USER}
chmod 440 /etc/sudoers.d/{USER}
/usr/local/sbin/haproxy-reload
"""
_APP_HOST = f"""set -eu
{_USER}
chown -R {USER}: {APP_DIR}
# Backups and the restore's swap live beside the app dir: its parent is writable for the group.
chgrp {USER} "$(dirname {APP_DIR})" && chmod g+w "$(dirname {APP_DIR})"
echo '{USER} ALL=(root) NOPASSWD: /usr/bin/supervisorctl restart jw-attendant' > /etc/sudoers.d/{USER}
chmod 440 /etc/sudoers.d/{USER}
"""


SUDO_USER = "bgsudo"
# A login that owns nothing the tool touches and may run anything with sudo (`sudo = true`).
_SUDO_USER = f"""set -eu
useradd --create-home --shell /bin/sh {SUDO_USER}
usermod -p '*' {SUDO_USER}
install -d -m 700 -o {SUDO_USER} -g {SUDO_USER} /home/{SUDO_USER}/.ssh
install -m 600 -o {SUDO_USER} -g {SUDO_USER} /root/.ssh/authorized_keys /home/{SUDO_USER}/.ssh/
echo '{SUDO_USER} ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/{SUDO_USER}
chmod 440 /etc/sudoers.d/{SUDO_USER}
"""


@pytest.fixture(scope="module")
def lp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = own_lab(tmp_path_factory, "lp")
    lab.up(layout="single")
    try:
        lab.exec("haproxy", ["sh", "-c", _HAPROXY])
        for role in ("blue", "green"):
            lab.exec(role, ["sh", "-c", _APP_HOST])
        for role in ("haproxy", "blue", "green"):
            lab.exec(role, ["sh", "-c", _SUDO_USER])
        yield lab
    finally:
        lab.down()


def unprivileged_config(info: LabInfo, tmp_path: Path) -> Path:
    """The lab's config with every ssh target as `bluegreen@`, and sudo only where the rules are."""
    text = Path(info.config_path).read_text()
    text = text.replace('"root@', f'"{USER}@')
    text = text.replace(
        'reload = ["/usr/local/sbin/haproxy-reload"]',
        'reload = ["sudo", "-n", "/usr/local/sbin/haproxy-reload"]',
    )
    text = text.replace(
        'restart = "supervisorctl restart jw-attendant"',
        'restart = "sudo -n supervisorctl restart jw-attendant"',
    )
    # Debian gives non-root logins no /usr/sbin in PATH.
    text = text.replace(
        'check = ["haproxy", "-c", "-f"]', 'check = ["/usr/sbin/haproxy", "-c", "-f"]'
    )
    text = re.sub(r"allow_unapproved = \w+", "allow_unapproved = true", text)
    assert text.count(f'"{USER}@') == 3 and "sudo -n supervisorctl" in text, text
    assert '"/usr/sbin/haproxy", "-c"' in text, text
    path = tmp_path / "bluegreen-unprivileged.toml"
    path.write_text(text)
    return path


def owners(lab: Lab, role: str, *paths: str) -> dict[str, str]:
    out = lab.exec(role, ["stat", "-c", "%n %U", *paths])
    return dict(line.rsplit(" ", 1) for line in out.strip().splitlines())


def not_owned_by_user(lab: Lab, role: str, path: str) -> list[str]:
    out = lab.exec(role, ["find", path, "!", "-user", USER])
    return [line for line in out.strip().splitlines() if line]


def test_a_release_cycle_as_an_unprivileged_user(lp_lab: Lab, tmp_path: Path) -> None:
    info = lp_lab.info()
    config_path = unprivileged_config(info, tmp_path)
    assert load_config(str(config_path)).haproxy.ssh.startswith(f"{USER}@")
    with Service.from_path(str(config_path)) as service:
        status = service.status(APP)
        assert status.certain, status.problems
        assert status.runtime_error is None  # the runtime socket answers the group
        assert status.live and status.live.color == "blue" and status.live.healthy
        assert status.standby and status.standby.healthy

        good = lp_lab.commit()
        deployed = service.deploy(APP)
        assert deployed.ok, deployed.error
        assert (deployed.color, deployed.commit_after) == ("green", good)

        lp_lab.commit("build")
        failed = service.deploy(APP)
        assert not failed.ok and failed.restored, failed.error
        green_app = info.hosts["green"].app
        assert green_app
        health = httpx.get(green_app + "/health", timeout=5).json()
        assert health["commit"] == good  # the restore put the good commit back, without root

        switched = service.switch(
            APP, SwitchRequest(require_approval=False, reason="least privilege test")
        )
        assert switched.ok, (
            switched.message,
            [(s.name, s.message, s.output_tail) for s in switched.steps],
        )
        drain = next(s for s in switched.steps if s.name == "drain")
        # The master socket is root's: the drain says so and waits instead of guessing.
        assert "did not answer" in drain.message, drain.message

        after = service.status(APP)
        assert after.certain and after.live and after.live.color == "green"
        assert after.drift == [] and after.lock is None
    assert httpx.get(info.frontend + "/health", timeout=5).json()["color"] == "green"
    written = owners(
        lp_lab,
        "haproxy",
        "/etc/haproxy/haproxy.cfg",
        "/var/lib/haproxy/jw-deployment-state.json",
    )
    assert set(written.values()) == {USER}, written
    assert not_owned_by_user(lp_lab, "haproxy", "/var/lib/bluegreen") == []
    for role in ("blue", "green"):
        assert not_owned_by_user(lp_lab, role, APP_DIR) == [], role


def test_sudo_true_runs_everything_through_real_sudo(lp_lab: Lab, tmp_path: Path) -> None:
    """`sudo = true` on every host, as a login that owns nothing: commands AND file reads and
    writes (haproxy.cfg, the state file, .env.display) go through `sudo -n`; the files keep
    their owners. (Runs after the test above: the lab is then GREEN LIVE.)"""
    info = lp_lab.info()
    text = Path(info.config_path).read_text().replace('"root@', f'"{SUDO_USER}@')
    text = re.sub(r"allow_unapproved = \w+", "allow_unapproved = true", text)
    text = text.replace(
        'check = ["haproxy", "-c", "-f"]', 'check = ["/usr/sbin/haproxy", "-c", "-f"]'
    )
    text = re.sub(r"^(ssh = .*)$", r"\1\nsudo = true", text, flags=re.M)
    assert text.count("sudo = true") == 3, text  # [haproxy], blue and green
    path = tmp_path / "bluegreen-sudo.toml"
    path.write_text(text)
    with Service.from_path(str(path)) as service:
        before = service.status(APP)
        assert before.certain and before.runtime_error is None, before.problems
        live = before.live.color if before.live else ""
        good = lp_lab.commit()
        deployed = service.deploy(APP)
        assert deployed.ok and deployed.commit_after == good, deployed.error
        switched = service.switch(APP, SwitchRequest(require_approval=False))
        assert switched.ok, (switched.message, [(s.name, s.message) for s in switched.steps])
        drain = next(s for s in switched.steps if s.name == "drain")
        assert "exited" in drain.message  # as root, the master CLI answers
        after = service.status(APP)
        assert after.certain and after.live and after.live.color != live and after.drift == []
    written = owners(
        lp_lab, "haproxy", "/etc/haproxy/haproxy.cfg", "/var/lib/haproxy/jw-deployment-state.json"
    )
    assert set(written.values()) == {USER}, written  # the owner the files had, kept
