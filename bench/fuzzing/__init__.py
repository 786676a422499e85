"""Coverage-guided fuzz targets (atheris) for every parser of outside data.

`bench/fuzz_atheris.py --target NAME` runs one family; the pieces live here so each stays small:
`values` turns fuzzer bytes into structured input (JSON-like values biased to a schema's keys,
grammar text, edits of real documents), `seeds` reads real documents out of the test fixtures,
`targets` holds one function per family with the error types that family may raise.
"""
