"""mail.spf.*: one valid SPF record, within the lookup limits, ending in a strict `all`.

Parsing and the recursive evaluation live in `watchtower.parsers.spf`; these checks feed it the
sweep's resolver (cached, so the three checks cost the DNS tree once) and judge what it found.
"""

from __future__ import annotations

from typing import Any

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import ParseError
from watchtower.parsers import spf as spf_parser
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import spf_lookup, txt_texts

_TOP_PROBLEMS = {"no-record", "multiple-records", "syntax"}


def evaluation_facts(target: Target, ctx: ProbeContext) -> Facts:
    """The evaluator's result as evidence, plus the `all` term as written where it was found;
    evaluated once per domain per sweep for mail.spf.lookups and mail.spf.policy (a copy each:
    the runner stamps its own observation time into the facts)."""
    return dict(ctx.once(("spf.evaluation", target.name.lower()), lambda: _evaluate(target, ctx)))


def _evaluate(target: Target, ctx: ProbeContext) -> Facts:
    evaluation = spf_parser.evaluate(target.name, spf_lookup(ctx))
    facts = evaluation.to_dict()
    facts["all_term"] = _all_term(facts.get("tree"), evaluation.all_domain)
    return facts


def _all_term(tree: dict[str, Any] | None, domain: str | None) -> str | None:
    """The `all` mechanism as written in the record of `domain` (e.g. `all` vs `+all`)."""
    if tree is None or domain is None:
        return None
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("domain") == domain and node.get("record"):
            try:
                mech = spf_parser.parse(node["record"]).all
            except ParseError:
                return None
            return mech.text if mech else None
        stack.extend(node.get("children", []))
    return None


@register
class SpfRecord(Check):
    meta = CheckMeta(
        id="mail.spf.record",
        family="mail",
        title="Exactly one syntactically valid SPF record",
        query="TXT `v=spf1`",
        verdicts="fail none or more than one; fail syntax error (RFC 7208)",
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=15,
        standards=("RFC 7208 3.2", "RFC 7208 4.5", "RFC 7208 12"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = txt_texts(ctx, target.name)
        facts["spf"] = spf_parser.select_spf(facts["txt"])
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        records = facts["spf"]
        if not records:
            where = " (NXDOMAIN)" if facts.get("rcode") == "NXDOMAIN" else ""
            f.fail(f"no SPF record at {facts['name']}{where}")
            return f.verdict("")
        if len(records) > 1:
            f.fail(f"{len(records)} SPF records at {facts['name']}: receivers answer permerror "
                   "(RFC 7208 4.5)")
            return f.verdict("")
        try:
            record = spf_parser.parse(records[0])
        except ParseError as exc:
            f.fail(f"SPF syntax error: {exc} (RFC 7208 4.6)")
            return f.verdict("")
        for note in record.warnings:
            f.ok(note)
        return f.verdict(f"one valid SPF record: {records[0][:200]}")


@register
class SpfLookups(Check):
    meta = CheckMeta(
        id="mail.spf.lookups",
        family="mail",
        title="SPF evaluation within 10 DNS lookups and 2 void lookups, no loops",
        query="recursive evaluation of include/redirect/a/mx/ptr/exists",
        verdicts=(
            "fail > 10 DNS-querying terms or > 2 void lookups, include/redirect loop, unresolvable"
            " include (RFC 7208 4.6.4)"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=20,
        standards=("RFC 7208 4.6.4", "RFC 7208 5.2", "RFC 7208 6.1"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return evaluation_facts(target, ctx)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        problems = facts.get("problems", [])
        top = [p for p in problems if p["kind"] in _TOP_PROBLEMS]
        if facts.get("error"):
            f.error(f"SPF evaluation incomplete: {facts['error']}")
        if top and not facts.get("error"):
            return f.verdict(f"no usable SPF record to evaluate ({top[0]['message']}; see "
                             "mail.spf.record)")
        for p in problems:
            if p["kind"] in _TOP_PROBLEMS:
                continue
            f.fail(p["message"])
        summary = (f"{facts.get('dns_lookups', 0)} DNS-querying terms (limit 10), "
                   f"{facts.get('void_lookups', 0)} void lookups (limit 2)")
        return f.verdict(summary)


@register
class SpfPolicy(Check):
    meta = CheckMeta(
        id="mail.spf.policy",
        family="mail",
        title="SPF ends in ~all or -all, without ptr",
        query="the effective `all`",
        verdicts=(
            "fail `+all`, `?all`, bare `all`, no `all` and no `redirect`; warn `ptr`; "
            "`~all`/`-all` pass"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=20,
        standards=("RFC 7208 5.1", "RFC 7208 5.5", "RFC 7208 6.1", "RFC 7208 8"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return evaluation_facts(target, ctx)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        kinds = {p["kind"] for p in facts.get("problems", [])}
        effective = facts.get("effective_all")
        if effective is None and facts.get("error"):
            f.error(f"SPF evaluation incomplete: {facts['error']}")
            return f.verdict("")
        if kinds & _TOP_PROBLEMS:
            f.fail("no usable SPF record: receivers get no policy (see mail.spf.record)")
            return f.verdict("")
        term = facts.get("all_term") or (f"{effective}all" if effective else None)
        where = f" (in {facts['all_domain']})" if facts.get("all_domain") not in (
            None, facts.get("domain")) else ""
        if effective is None:
            f.fail("no 'all' and no usable 'redirect': mail from anywhere gets 'neutral' "
                   "(RFC 7208 4.7)")
        elif effective == "+":
            bare = " (a bare 'all' means '+all')" if term == "all" else ""
            f.fail(f"'{term}'{where} lets anyone send as this domain{bare} (RFC 7208 5.1)")
        elif effective == "?":
            f.fail(f"'{term}'{where} is neutral: it asserts nothing (RFC 7208 8.2)")
        if facts.get("uses_ptr"):
            f.warn("'ptr' is slow and unreliable and SHOULD NOT be used (RFC 7208 5.5)")
        return f.verdict(f"effective policy '{term}'{where}")
