"""Built-in checks, one module per family (installed as `watchtower.checks`).

Where a new check goes: the module of its family (`dns.py`, `web.py`, ...), as a `Check` subclass
decorated with `@register`, with a stable id and its catalog row (`query`, `verdicts`) in its
`CheckMeta`: docs/check-catalog.md is generated from them (`python -m watchtower.probe.catalog`).
A new family is a new module listed in `watchtower.probe.registry.BUILTIN_CHECK_MODULES`.
Fixtures for its verdicts go in `tests/fixtures/checks/<check id>.json`.
"""
