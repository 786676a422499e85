"""Compliance logic: what a standard demands and how a fact is graded against it.

`ncsc_tls` holds the NCSC-NL TLS guideline's grading tables, `frameworks` maps every graded
criterion to the internet.nl test identifiers and the Forum Standaardisatie "pas toe of leg
uit" standards, `tls_criteria` turns a TLS scan into graded criteria. Pure data and pure
functions: no I/O, so checks, reports and the dashboard read the same truth.
"""
