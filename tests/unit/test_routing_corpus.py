"""Every layout of the corpus through the analysis and the switch edit, against its expected answer."""

from __future__ import annotations

import pytest
from tests.haproxy_corpus import CORPUS, Case, cases

from bluegreen.domain.routing import RoutingAnalysis, analyze_routing, load, plan_switch
from bluegreen.errors import HAProxyConfigError

CASES = cases()


def analyze(case: Case) -> RoutingAnalysis:
    return analyze_routing(
        case.load(), case.frontend, case.servers, rule=case.rule, hosts=case.hosts
    )


def test_the_corpus_covers_every_file() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.cfg")}
    used = {path for case in CASES for path in case.paths()}
    assert files == used
    assert len(files) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case(case: Case) -> None:
    expect = case.expect
    loaded = case.load()
    a = analyze(case)
    assert a.certain == expect["certain"], a.problems
    if "note" in expect:
        assert expect["note"] in " ".join(a.notes)
    if not a.certain:
        assert expect["problem"] in " ".join(a.problems)
        with pytest.raises(HAProxyConfigError, match="uncertain"):
            plan_switch(loaded, a, "green" if a.live == "blue" else "blue")
        return
    assert a.live == expect["live"]
    assert len(a.preview) == expect.get("preview", 0)
    deciding = [loaded.cfg.line(n).text.strip() for n in a.deciding_lines]
    if "deciding" in expect:
        assert deciding == expect["deciding"]
    assert a.standby is not None
    edit = plan_switch(loaded, a, a.standby)
    assert edit.analysis.certain and edit.analysis.live == a.standby
    assert edit.path == expect.get("edited", edit.path)
    body = [line for line in edit.diff.splitlines()[2:] if line[:1] in "-+"]
    removed = [line[1:].strip() for line in body if line.startswith("-")]
    added = [line[1:].strip() for line in body if line.startswith("+")]
    assert removed == deciding  # exactly the deciding lines, nothing else
    if "after" in expect:
        assert added == expect["after"]
    assert len(edit.changed_lines) == len(a.deciding_lines)
    # Only the file holding the lines changes; switching back restores it byte for byte.
    files = [(p, edit.text if p == edit.path else loaded.text(p)) for p in case.paths()]
    switched = load(files)
    assert a.live is not None
    back = plan_switch(switched, edit.analysis, a.live)
    assert back.text == loaded.text(edit.path)
