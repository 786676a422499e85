"""The Prometheus text exposition format, read with prometheus_client's own parser (the
reference implementation, already a dependency), keeping only the samples a check asks for.

Exporters differ in spelling a little: the prometheus_exporter gem's stand-alone process
prefixes every name with `ruby_` (its `--prefix` default) while Mastodon's in-process exporter
(MASTODON_PROMETHEUS_EXPORTER_LOCAL) uses none, and older gem versions named the Sidekiq
backlog `sidekiq_queue_backlog_total`; counters may or may not carry `_total`. Garage's
monitoring manual names its block metrics `block_resync_queue_length` in one edition and
`garage_block_resync_queue_length` in another. `parse` folds those spellings onto the names
asked for, so a check names each metric once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from watchtower.parsers import ParseError

Samples = dict[str, list[tuple[dict[str, str], float]]]
PREFIXES = ("ruby_", "garage_")


def _canonical(name: str, wanted: set[str]) -> str | None:
    for candidate in (name, *(name[len(p):] for p in PREFIXES if name.startswith(p))):
        for spelling in (candidate, candidate.removesuffix("_total")):
            if spelling in wanted:
                return spelling
    return None


def parse(text: str, wanted: Iterable[str]) -> Samples:
    """{wanted name: [(labels, value), ...]} of the samples present (NaN values dropped)."""
    names = set(wanted)
    out: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = _canonical(sample.name, names)
                if name is None or math.isnan(sample.value):
                    continue
                out.setdefault(name, []).append((dict(sample.labels), float(sample.value)))
    except (ValueError, TypeError, IndexError) as exc:
        raise ParseError(f"not Prometheus text format ({exc})") from None
    return out


def total(samples: Samples, name: str) -> float | None:
    """The sum of a metric over its label sets, or None when absent."""
    values = [v for _, v in samples.get(name, [])]
    return sum(values) if values else None


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """label value -> the largest value of `name` with that label (the gem reports a queue
    once per Sidekiq process that serves it: the same figure, never to be summed)."""
    out: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        key = labels.get(label, "")
        out[key] = max(value, out.get(key, value))
    return out
