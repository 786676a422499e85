"""SharedCalls: one computation per question, shared by concurrent and later askers, bounded."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from watchtower.net.shared import SharedCalls


def test_concurrent_askers_share_one_computation() -> None:
    memo = SharedCalls()
    calls = []
    started = threading.Event()

    def compute() -> str:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "answer"

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: memo.get("q", compute), range(6)))
    assert answers == ["answer"] * 6 and len(calls) == 1
    assert memo.get("q", compute) == "answer" and len(calls) == 1
    assert (memo.hits, memo.misses) == (6, 1)
    assert memo._pending == {}  # finished answers are kept without their Future


def test_a_failure_is_kept_or_retried_as_configured() -> None:
    def fail() -> str:
        raise ValueError("down")

    kept = SharedCalls(keep_errors=True)
    with pytest.raises(ValueError):
        kept.get("q", fail)
    with pytest.raises(ValueError):
        kept.get("q", lambda: "never asked")

    retried = SharedCalls(keep_errors=False)
    with pytest.raises(ValueError):
        retried.get("q", fail)
    assert retried.get("q", lambda: "now up") == "now up"


def test_a_waiter_gives_up_at_its_own_deadline() -> None:
    memo = SharedCalls()
    release = threading.Event()
    owner = threading.Thread(target=memo.get, args=("q", lambda: release.wait(5)))
    owner.start()
    while not memo.keys():
        time.sleep(0.01)
    with pytest.raises(TimeoutError):
        memo.get("q", lambda: "not asked", wait=0.1)
    release.set()
    owner.join()
    answer: object = memo.get("q", lambda: "not asked")
    assert answer is True  # what the owner's compute returned


def test_the_least_recently_used_answer_goes_first() -> None:
    memo = SharedCalls(max_entries=2)
    memo.get("a", lambda: 1)
    memo.get("b", lambda: 2)
    memo.get("a", lambda: 0)  # a is used again: b is now the oldest
    memo.get("c", lambda: 3)
    assert sorted(map(str, memo.keys())) == ["a", "c"]
    assert memo.get("b", lambda: 20) == 20  # computed again
