"""Every corpus file, and every answerable case's switched text, passes `haproxy -c` in the lab's
HAProxy image. One container, no network: server addresses are never contacted."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from bluegreen.domain.routing import analyze_routing, plan_switch
from bluegreen.lab.controller import LABEL
from bluegreen.lab.images import ensure_images
from tests.haproxy_corpus import CORPUS, Case, cases

pytestmark = pytest.mark.lab

# Files some layouts name (certificates, an error page), made inside the container.
SETUP = """
set -e
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=corpus.test -days 2 \
    -keyout /tmp/key.pem -out /tmp/cert.pem 2>/dev/null
mkdir -p /etc/haproxy/certs /etc/ssl/private
cat /tmp/cert.pem /tmp/key.pem > /etc/haproxy/certs/site.pem
cp /etc/haproxy/certs/site.pem "/etc/haproxy/certs/local host.pem"
cp /etc/haproxy/certs/site.pem /etc/ssl/private/www.pem
cp /etc/haproxy/errors/503.http /etc/haproxy/errors/503-custom.http
echo "192.0.2.1 blue green" >> /etc/hosts
"""


@pytest.fixture(scope="module")
def checker() -> Iterator[Any]:
    import docker

    client = docker.from_env()
    image = ensure_images(client)["haproxy"]
    prefix = os.environ.get("BLUEGREEN_TEST_LAB_PREFIX", "bluegreen-test")
    name = f"{prefix}-cfgcheck"
    for old in client.containers.list(all=True, filters={"name": f"^{name}$"}):
        old.remove(force=True)
    container = client.containers.run(
        image,
        entrypoint=["sleep", "infinity"],
        name=name,
        labels={LABEL: prefix},
        network_mode="none",
        detach=True,
    )
    try:
        code, out = container.exec_run(["sh", "-c", SETUP])
        assert code == 0, out.decode(errors="replace")
        yield container
    finally:
        container.remove(force=True)


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _check(container: Any, root: str, case: Case) -> str | None:
    """None when HAProxy answers as the case expects, else what it said."""
    args = [arg for path in case.files for arg in ("-f", f"{root}/{path}")]
    env = case.expect.get("haproxy_env", {})
    code, raw = container.exec_run(["haproxy", "-c", *args], environment=env)
    out = raw.decode(errors="replace")
    refused = case.expect.get("haproxy_refuses")
    if refused is not None:
        return None if code != 0 and refused in out else f"expected a refusal ({refused}): {out}"
    return None if code == 0 else out


def test_every_layout_and_every_switch_passes_haproxy_check(checker: Any) -> None:
    originals = {
        str(p.relative_to(CORPUS)): p.read_bytes().decode()
        for p in CORPUS.rglob("*")
        if p.is_file()
    }
    edited: dict[str, str] = {}
    answerable: list[Case] = []
    for case in cases():
        loaded = case.load()
        a = analyze_routing(loaded, case.frontend, case.servers, rule=case.rule, hosts=case.hosts)
        if not a.certain:
            continue
        assert a.standby is not None
        edit = plan_switch(loaded, a, a.standby)
        for path in case.paths():
            edited[f"{case.name}/{path}"] = edit.text if path == edit.path else loaded.text(path)
        for directory in case.files:  # keep directories (and their non-.cfg files) whole
            if (CORPUS / directory).is_dir():
                for path, text in originals.items():
                    if path.startswith(f"{directory}/") and path not in case.paths():
                        edited.setdefault(f"{case.name}/{path}", text)
        answerable.append(case)
    assert checker.put_archive("/", _tar({f"corpus/{p}": t for p, t in originals.items()}))
    assert checker.put_archive("/", _tar({f"edited/{p}": t for p, t in edited.items()}))
    failures: list[str] = []
    for case in cases():
        said = _check(checker, "/corpus", case)
        if said is not None:
            failures.append(f"{case.name} (as written): {said}")
    for case in answerable:
        said = _check(checker, f"/edited/{case.name}", case)
        if said is not None:
            failures.append(f"{case.name} (switched): {said}")
    assert len(answerable) >= 25
    assert failures == [], "\n\n".join(failures)
