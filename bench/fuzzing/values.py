"""Fuzzer bytes read as structured input: JSON-like values, grammar text, edits of real documents.

libFuzzer mutates bytes. Fed straight to `json.loads`, nearly every mutation is a syntax error
and the parser under test never sees a document; fed to an SPF parser, most mutations never get
past `v=spf1`. So the first byte of an input chooses how the rest is read:

- mode 0, raw: the rest is the document itself (UTF-8 text or JSON text). The seed corpus is
  written in this mode, so libFuzzer's own mutations start from real documents.
- mode 1, built: the rest is a sequence of choices (`Source`) that builds a value from nothing,
  keys and strings drawn mostly from the schema's vocabulary.
- mode 2 and 3, edited: choose a real document (seed) and apply a few edits at chosen paths
  (replace a value, add a schema key, drop a member, change a type). Deep paths start reached.

Every choice falls back to its lowest option when the bytes run out, and that option is "keep":
an exhausted input reads as the unchanged seed, never as an endless structure.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import atheris

T = TypeVar("T")

MAX_DEPTH = 6
INTERESTING_INTS = (0, 1, -1, 2, 3, 42, 100, 101, 255, 256, 443, 8448, 65535, 65536, 2**31 - 1,
                    2**31, 2**53 + 1, 2**63, -(2**63), 10**20, 1794096000000)
INTERESTING_FLOATS = (0.0, -0.0, 0.5, 1.0, 1e308, -1e308, 1e-320, float("inf"), float("-inf"),
                      float("nan"))


class Source:
    """The fuzzer's bytes read as choices (integers from the end, text from the front)."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def between(self, lo: int, hi: int) -> int:
        return int(self.fdp.ConsumeIntInRange(lo, hi))

    def pick(self, items: Sequence[T]) -> T:
        return items[self.between(0, len(items) - 1)]

    def text(self, max_len: int) -> str:
        """Any unicode, lone surrogates included (JSON `"\\ud800"` decodes to one)."""
        return str(self.fdp.ConsumeUnicode(self.between(0, max_len)))

    def bytes(self, max_len: int) -> bytes:
        return bytes(self.fdp.ConsumeBytes(self.between(0, max_len)))

    def number(self) -> int | float:
        kind = self.between(0, 3)
        if kind == 0:
            return self.pick(INTERESTING_INTS)
        if kind == 1:
            return int(self.fdp.ConsumeInt(self.between(1, 10)))
        if kind == 2:
            return self.pick(INTERESTING_FLOATS)
        return float(self.fdp.ConsumeFloat())


def split_mode(data: bytes, modes: int) -> tuple[int, bytes]:
    """The first byte picks the mode (see the module docstring), the rest is its input."""
    return (data[0] % modes, data[1:]) if data else (0, b"")


def raw_text(rest: bytes) -> str:
    """Mode 0 text: UTF-8, undecodable bytes kept as lone surrogates (parsers must cope)."""
    return rest.decode("utf-8", "surrogateescape")


def seed_file(payload: bytes) -> bytes:
    """A corpus file that mode 0 reads back as `payload`."""
    return b"\x00" + payload


# -- JSON-like values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vocab:
    """The words a schema's parser looks for: member names and meaningful string values."""

    keys: tuple[str, ...]
    strings: tuple[str, ...] = ("",)


def string(src: Source, vocab: Vocab) -> str:
    how = src.between(0, 2)
    if how == 0:
        return src.pick(vocab.strings)
    if how == 1:
        return src.text(24)
    return src.pick(vocab.strings) + src.text(6)


def key(src: Source, vocab: Vocab) -> str:
    return src.text(10) if src.between(0, 7) == 7 else src.pick(vocab.keys)


def json_value(src: Source, vocab: Vocab, depth: int = 0) -> Any:
    kind = src.between(0, 9 if depth < MAX_DEPTH else 5)
    if kind == 0:
        return None
    if kind == 1:
        return src.between(0, 1) == 1
    if kind in (2, 3):
        return src.number()
    if kind in (4, 5):
        return string(src, vocab)
    if kind in (6, 7):
        return [json_value(src, vocab, depth + 1) for _ in range(src.between(0, 5))]
    return {key(src, vocab): json_value(src, vocab, depth + 1) for _ in range(src.between(0, 6))}


def edit_json(src: Source, doc: Any, vocab: Vocab) -> Any:
    """A copy of `doc` with a few edits, each at a path chosen by descending from the root."""
    doc = copy.deepcopy(doc)
    for _ in range(src.between(0, 4)):
        doc = _edit(src, doc, vocab, 0)
    return doc


def _edit(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    """Descend into a random member or item (two times in three stop here), then apply one
    edit (EDITS, chosen by the next byte) to the node reached."""
    if isinstance(node, dict | list) and node and depth < 12 and src.between(0, 2) == 0:
        if isinstance(node, dict):
            member = src.pick(list(node))
            node[member] = _edit(src, node[member], vocab, depth + 1)
        else:
            i = src.between(0, len(node) - 1)
            node[i] = _edit(src, node[i], vocab, depth + 1)
        return node
    return EDITS[src.between(0, len(EDITS) - 1)](src, node, vocab, depth)


def _keep(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    return node


def _replace(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    return json_value(src, vocab, depth)


def _add(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    """Add a member or an item."""
    if isinstance(node, dict):
        node[key(src, vocab)] = json_value(src, vocab, depth + 1)
    elif isinstance(node, list):
        node.insert(src.between(0, len(node)), json_value(src, vocab, depth + 1))
    return node


def _drop(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    """Drop a member or an item."""
    if isinstance(node, dict) and node:
        del node[src.pick(list(node))]
    elif isinstance(node, list) and node:
        del node[src.between(0, len(node) - 1)]
    return node


def _twist(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    """The same data, another JSON type."""
    twist = src.between(0, 3)
    if twist == 0:
        return [node]
    if twist == 1:
        if isinstance(node, str):
            return {key(src, vocab): node}
        return json.dumps(node, default=str)
    if twist == 2 and isinstance(node, dict):
        return list(node.values())
    return str(node)


def _duplicate(src: Source, node: Any, vocab: Vocab, depth: int) -> Any:
    """Duplicate an item, or a member under another key."""
    if isinstance(node, list) and node:
        node.append(copy.deepcopy(src.pick(node)))
    elif isinstance(node, dict) and node:
        node[key(src, vocab)] = copy.deepcopy(node[src.pick(list(node))])
    return node


EDITS: tuple[Callable[[Source, Any, Vocab, int], Any], ...] = (
    _keep, _replace, _add, _drop, _twist, _duplicate)
"""The edits `edit_json` applies, in the order the fuzzer's byte chooses among them."""


NOT_JSON = object()
"""What `json_input` returns for mode-0 bytes that are not JSON (the target skips them)."""


def json_input(data: bytes, vocab: Vocab, seeds: Sequence[Any]) -> Any:
    """A JSON-like value from fuzzer bytes, in one of the four modes."""
    mode, rest = split_mode(data, 4)
    if mode == 0:
        try:
            return json.loads(raw_text(rest))
        except (ValueError, RecursionError):
            return NOT_JSON
    src = Source(rest)
    if mode == 1 or not seeds:
        return json_value(src, vocab)
    return edit_json(src, src.pick(seeds), vocab)


# -- grammar text ---------------------------------------------------------------------------


def token_text(src: Source, tokens: Sequence[str], seps: Sequence[str] = ("", " ")) -> str:
    parts = []
    for _ in range(src.between(0, 24)):
        parts.append(src.text(3) if src.between(0, 5) == 5 else src.pick(tokens))
        parts.append(src.pick(seps))
    return "".join(parts)


def edit_text(src: Source, text: str, tokens: Sequence[str]) -> str:
    """`text` with a few splices: a grammar token or odd characters in, a span out or doubled."""
    for _ in range(src.between(0, 4)):
        at = src.between(0, len(text))
        end = min(len(text), at + src.between(0, 12))
        op = src.between(0, 4)
        if op == 0:
            continue
        if op == 1:
            text = text[:at] + src.pick(tokens) + text[at:]
        elif op == 2:
            text = text[:at] + text[end:]
        elif op == 3:
            text = text[:at] + src.pick(tokens) + text[end:]
        else:
            text = text[:at] + (src.text(4) or text[at:end]) + text[at:]
    return text


def text_input(data: bytes, tokens: Sequence[str], seeds: Sequence[str],
               seps: Sequence[str] = ("", " ")) -> str:
    """Grammar-biased text from fuzzer bytes: raw, built from tokens, or an edited seed."""
    mode, rest = split_mode(data, 4)
    if mode == 0:
        return raw_text(rest)
    src = Source(rest)
    if mode == 1 or not seeds:
        return token_text(src, tokens, seps)
    return edit_text(src, src.pick(seeds), tokens)


def text_from(src: Source, tokens: Sequence[str], seeds: Sequence[str],
              seps: Sequence[str] = ("", " ")) -> str:
    """One grammar-biased text drawn from a running Source (targets that need several)."""
    how = src.between(0, 2)
    if how == 0 and seeds:
        return edit_text(src, src.pick(seeds), tokens)
    if how == 1 or not seeds:
        return token_text(src, tokens, seps)
    return src.text(300)


def json_from(src: Source, vocab: Vocab, seeds: Sequence[Any]) -> Any:
    """One JSON-like value drawn from a running Source: an edited seed or a built value."""
    if seeds and src.between(0, 1) == 0:
        return edit_json(src, src.pick(seeds), vocab)
    return json_value(src, vocab)


def edit_bytes(src: Source, blob: bytes) -> bytes:
    """`blob` with a few byte-level edits: one byte changed, a span cut, bytes inserted."""
    for _ in range(src.between(0, 3)):
        at = src.between(0, len(blob))
        op = src.between(0, 3)
        if op == 1 and at < len(blob):
            blob = blob[:at] + bytes([src.between(0, 255)]) + blob[at + 1:]
        elif op == 2:
            blob = blob[:at] + blob[at + src.between(1, 64):]
        elif op == 3:
            blob = blob[:at] + src.bytes(8) + blob[at:]
    return blob
