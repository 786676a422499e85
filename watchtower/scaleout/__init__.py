"""Probes from several vantage points on procrastinate, the PostgreSQL task engine.

    ticks.py     pure: which schedule groups a tick makes due, queue names, chunks
    quorum.py    pure: the combined verdict of one pair over its vantages
    engine.py    the procrastinate app, its tasks, and a worker loop that outlives the database
    fanout.py    the scheduler's work per tick: defer, judge by quorum, vantage liveness
    agent.py     an agent's work per job: the same sweep as a local one, results per vantage
    roles.py     `watchtower run --role scheduler` (a daemon part) and `watchtower agent`

The single-process `watchtower run` (APScheduler, watchtower/probe/scheduler.py) stays the
default and never imports this package. docs/scale-out.md is the operator's view.
"""
