"""Coverage-guided fuzzing of the SPF and DMARC parsers with atheris (libFuzzer for Python).

Hypothesis (tests/unit/parsers/test_parsers_fuzz.py) explores the grammars from their tokens;
atheris mutates bytes towards new branches, which finds what nobody thought to generate. The
contract is the same: `parse` raises ParseError or nothing else, whatever the bytes.

    pip install atheris
    python bench/fuzz_atheris.py -atheris_runs=200000            # both parsers
    python bench/fuzz_atheris.py -max_total_time=120 corpus_dir/  # keep a corpus

libFuzzer prints `#N ... exec/s: R` lines; a crash stops the run with the input saved as
crash-<sha1> in the working directory. atheris is not a project dependency (dev tool only).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from watchtower.parsers import ParseError, dmarc, spf


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, 2)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    if which == 0:
        text = "v=spf1 " + text
    elif which == 1:
        text = "v=DMARC1; " + text
    for parser in (spf.parse, dmarc.parse):
        with contextlib.suppress(ParseError):
            parser(text)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
