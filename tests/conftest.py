"""Shared fixtures. The lab fixtures start the real Docker lab once per session.

A lab test never skips: when Docker is missing the fixture errors, and the run fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.service import Service


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    prefix = os.environ.get("BLUEGREEN_TEST_LAB_PREFIX", "bluegreen-test")
    state_dir = Path(tmp_path_factory.mktemp("lab")) / prefix
    lab = Lab(prefix, state_dir=state_dir)
    lab.up(layout="single")  # the shared layout's tests start their own (test_shared_layout.py)
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second lab in the default layout (the users' shared frontend, two apps), for the tests
    of that layout and of the README's lines, which use `bluegreen lab up` as it comes."""
    prefix = os.environ.get("BLUEGREEN_TEST_LAB_PREFIX", "bluegreen-test") + "-shared"
    lab = Lab(prefix, state_dir=Path(tmp_path_factory.mktemp("shared-lab")) / prefix)
    lab.up()  # the default layout
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab_info(lab: Lab) -> LabInfo:
    return lab.info()


@pytest.fixture(scope="session")
def lab_service(lab_info: LabInfo) -> Iterator[Service]:
    with Service.from_path(lab_info.config_path) as service:
        yield service


@pytest.fixture
def fresh_lab(lab: Lab) -> Lab:
    """The lab as `up` left it (initial cfg, no state file, both hosts on the first commit)."""
    lab.reset()
    return lab
