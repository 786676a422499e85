"""The quorum rule (watchtower/scaleout/quorum.py) as a table: what each vantage saw -> the
combined verdict and where it names."""

from __future__ import annotations

import pytest

from watchtower.model import Status
from watchtower.scaleout.quorum import Seen, combine

OK, WARN, FAIL, ERROR = Status.OK, Status.WARN, Status.FAIL, Status.ERROR
ABC = ("a", "b", "c")

CASES = [
    # expected, {vantage: status}, fail_at, -> status, problems, missing, words in summary
    (("local",), {"local": OK}, 1, OK, (), (), "v-local"),
    (("local",), {"local": FAIL}, 1, FAIL, ("local",), (), "v-local"),
    (("local",), {}, 1, ERROR, (), ("local",), "too few"),
    (ABC, {"a": OK, "b": OK, "c": OK}, 2, OK, (), (), "all 3"),
    (ABC, {"a": FAIL, "b": FAIL, "c": OK}, 2, FAIL, ("a", "b"), (), "a, b (2 of 3)"),
    (ABC, {"a": OK, "b": OK, "c": FAIL}, 2, WARN, ("c",), (), "only from c (1 of 3)"),
    (ABC, {"a": ERROR, "b": FAIL, "c": OK}, 2, FAIL, ("a", "b"), (), "a, b (2 of 3)"),
    (ABC, {"a": ERROR, "b": ERROR, "c": OK}, 2, ERROR, ("a", "b"), (), "seen from"),
    (ABC, {"a": OK, "b": OK}, 2, WARN, (), ("c",), "no result from c (1 of 3)"),
    (ABC, {"a": OK}, 2, ERROR, (), ("b", "c"), "too few vantages reported (1 of 3"),
    (ABC, {"a": FAIL}, 1, FAIL, ("a",), ("b", "c"), "seen from a (1 of 3)"),
    (ABC, {"a": OK, "b": WARN, "c": OK}, 2, WARN, (), (), "warn from b (1 of 3)"),
    (ABC, {"a": FAIL, "b": FAIL, "c": FAIL}, 3, FAIL, ABC, (), "(3 of 3)"),
    (ABC, {"a": FAIL, "b": FAIL, "c": OK}, 3, WARN, ("a", "b"), (), "below the quorum of 3"),
    (ABC, {"a": OK, "b": OK, "c": OK, "z": FAIL}, 2, OK, (), (), "all 3"),  # z not placed
]


@pytest.mark.parametrize(("expected", "statuses", "fail_at", "status", "problems", "missing",
                          "words"), CASES)
def test_quorum(expected: tuple[str, ...], statuses: dict[str, Status], fail_at: int,
                status: Status, problems: tuple[str, ...], missing: tuple[str, ...],
                words: str) -> None:
    seen = {v: Seen(s, f"v-{v}") for v, s in statuses.items()}
    got = combine(expected, seen, fail_at)
    assert (got.status, got.problems, got.missing) == (status, problems, missing)
    assert words in got.summary
    assert got.findings[0].status is status


def test_missing_is_never_ok() -> None:
    """However many vantages are missing, the combined verdict is never `ok`."""
    for reported in range(len(ABC)):
        seen = {v: Seen(OK, "fine") for v in ABC[:reported]}
        assert combine(ABC, seen, 2).status is not OK
