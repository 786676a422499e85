"""The exposition-format reader folds exporters' spellings onto the names a check asks for."""

from __future__ import annotations

from watchtower.parsers import promtext

WANTED = ("block_resync_queue_length", "garage_local_disk_avail", "sidekiq_queue_latency_seconds",
          "sidekiq_stats_dead_size")


def test_garage_block_metrics_read_with_or_without_the_garage_prefix() -> None:
    plain = promtext.parse("block_resync_queue_length 3\n", WANTED)
    prefixed = promtext.parse("garage_block_resync_queue_length 3\n", WANTED)
    assert plain == prefixed == {"block_resync_queue_length": [({}, 3.0)]}


def test_a_wanted_name_that_carries_the_prefix_itself_is_kept() -> None:
    text = 'garage_local_disk_avail{volume="data"} 10\n'
    assert promtext.parse(text, WANTED) == {"garage_local_disk_avail": [({"volume": "data"}, 10.0)]}


def test_the_gem_prefix_and_total_suffix_fold_too() -> None:
    text = ("ruby_sidekiq_queue_latency_seconds{queue=\"default\"} 1.5\n"
            "sidekiq_stats_dead_size_total 2\n")
    samples = promtext.parse(text, WANTED)
    assert promtext.by_label(samples, "sidekiq_queue_latency_seconds", "queue") == {"default": 1.5}
    assert promtext.total(samples, "sidekiq_stats_dead_size") == 2.0
