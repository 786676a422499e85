"""What the lab's fault switch says when it cannot honour a request (before it touches any
server): the names it would have accepted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from watchtower.cli.lab import _choice_lines
from watchtower.lab.faults import FaultError, FaultSwitch, applicable
from watchtower.lab.fleet import build_domains


@pytest.fixture
def switch() -> FaultSwitch:
    return FaultSwitch(SimpleNamespace(domains=build_domains(3, {})))  # type: ignore[arg-type]


def test_unknown_fault_lists_the_faults_of_the_domain(switch: FaultSwitch) -> None:
    with pytest.raises(FaultError) as err:
        switch.set("alpha.test", "nosuchfault", True)
    assert str(err.value) == "unknown lab fault 'nosuchfault'; the faults of alpha.test:"
    assert err.value.choices == tuple(applicable(switch.lab.domains[0]))
    assert "no-dmarc" in err.value.choices


def test_a_near_miss_is_named(switch: FaultSwitch) -> None:
    with pytest.raises(FaultError, match=r"did you mean site:no-hsts\?"):
        switch.set("alpha.test", "site:no-hst", True)


def test_unknown_domain_of_a_small_lab_lists_them(switch: FaultSwitch) -> None:
    with pytest.raises(FaultError) as err:
        switch.set("alpha.tset", "no-dmarc", True)
    assert "did you mean alpha.test?" in str(err.value)
    assert err.value.choices == ("alpha.test", "bravo.test", "charlie.test")


def test_choices_are_wrapped_one_group_per_role() -> None:
    lines = _choice_lines(["no-caa", "no-dmarc", "site:no-hsts", "site:weak-hsts", "fedi:hang"])
    assert lines == ["  no-caa, no-dmarc", "  site:no-hsts, site:weak-hsts", "  fedi:hang"]
    long = _choice_lines([f"fault-number-{i}" for i in range(40)], width=60)
    assert len(long) > 1 and all(len(line) <= 60 for line in long)
    assert all(line.startswith("    ") for line in long[1:])
