"""Which line of a fleet file each table and key starts on, so a problem can say where it is.

tomllib gives values without positions, and tomlkit (which keeps the document) does not keep
line numbers either, so the text is read a second time here, only for structure: headers
(`[probe]`, `[[zones]]`, `[checks."dns.ns.count"]`) and `key = value` lines at the top of a
value (not inside a multi-line array, inline table or string). Key names themselves are parsed
by tomllib, so quoting and dotted keys follow the TOML grammar exactly. A key inside an inline
table or array is found by its nearest enclosing key that has a line of its own.

Paths are tuples of keys and array indices, as pydantic reports locations: ("zones", 1, "ttl").
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

Path = tuple[str | int, ...]

#: One step of a path as problems spell it: `.key`, `."quoted.key"` or `[3]`.
_STEP = re.compile(r'\.?(?:"(?P<quoted>[^"]*)"|(?P<plain>[A-Za-z0-9_$-]+))|\[(?P<index>\d+)\]')


def spell(path: Path) -> str:
    """`zones[1].ttl`, `checks."dns.ns.count".interval`: how problems name a place."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if _plain(part) else f'"{part}"')
    return out or "(top level)"


def _plain(key: str) -> bool:
    return key.replace("_", "").replace("-", "").replace("$", "").isalnum()


def parse_leading_path(problem: str) -> Path:
    """The path a problem starts with (`zones[1].name: duplicate ...` -> ("zones", 1, "name"))."""
    parts: list[str | int] = []
    pos = 0
    while (m := _STEP.match(problem, pos)) and (parts or not problem.startswith(".")):
        index = m.group("index")
        parts.append(int(index) if index is not None else (m.group("quoted")
                                                           if m.group("quoted") is not None
                                                           else m.group("plain")))
        pos = m.end()
    return tuple(parts)


def key_lines(text: str) -> dict[Path, int]:
    """Every table and key that starts a line -> its 1-based line number (the first one)."""
    lines: dict[Path, int] = {}
    arrays: dict[Path, int] = {}  # array of tables -> how many of its tables came so far
    table: Path = ()
    depth = 0  # open brackets and braces of a value spanning lines
    for number, (masked, line) in enumerate(zip(_masked(text).split("\n"), text.split("\n"),
                                                strict=True), start=1):
        stripped = masked.lstrip()
        start = len(masked) - len(stripped)
        if depth > 0 or not stripped or stripped[0] == "~":  # inside a value or a string
            depth += _opened(masked)
            continue
        if stripped.startswith("[["):
            end = masked.find("]]", start)
            parts = _key_parts(line[start + 2:end]) if end > 0 else None
            if parts:
                parent, name = _resolve(parts[:-1], arrays), parts[-1]
                array = (*parent, name)
                arrays[array] = arrays.get(array, 0) + 1
                table = (*array, arrays[array] - 1)
                lines.setdefault(array, number)
                lines.setdefault(table, number)
        elif stripped.startswith("["):
            end = masked.find("]", start)
            parts = _key_parts(line[start + 1:end]) if end > 0 else None
            if parts:
                table = _resolve(parts, arrays)
                lines.setdefault(table, number)
        elif (equals := masked.find("=")) > 0:
            for i in range(1, len(parts := _key_parts(line[:equals]) or ()) + 1):
                lines.setdefault((*table, *parts[:i]), number)
            depth += _opened(masked[equals + 1:])
    return lines


def line_of(path: Path, lines: dict[Path, int]) -> int | None:
    """The line of `path`, or of its nearest enclosing table or key that has one."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _resolve(parts: tuple[str, ...], arrays: dict[Path, int]) -> Path:
    """A header's keys with the current index of each array of tables on the way
    (`[[zones.records]]` belongs to the last `[[zones]]`)."""
    out: list[str | int] = []
    for part in parts:
        out.append(part)
        if tuple(out) in arrays:
            out.append(arrays[tuple(out)] - 1)
    return tuple(out)


def _key_parts(key: str) -> tuple[str, ...] | None:
    """The parts of a (possibly dotted, possibly quoted) TOML key, by tomllib itself."""
    try:
        doc: Any = tomllib.loads(f"{key.strip()} = 0")
    except tomllib.TOMLDecodeError:
        return None
    parts: list[str] = []
    while isinstance(doc, dict) and len(doc) == 1:
        name, doc = next(iter(doc.items()))
        parts.append(name)
    return tuple(parts)


def _opened(masked: str) -> int:
    return masked.count("[") + masked.count("{") - masked.count("]") - masked.count("}")


def _masked(text: str) -> str:
    """`text` with the inside of every string replaced by `~` and every comment by blanks
    (newlines kept, length kept), so the brackets, `=` and `#` that remain are TOML's own
    and a line that starts with `~` continues a multi-line string."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            end, closed = _string_end(text, i + len(quote), quote)
            body = text[i + len(quote):end - (len(quote) if closed else 0)]
            out.append(quote + re.sub(r"[^\n]", "~", body) + (quote if closed else ""))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _string_end(text: str, i: int, quote: str) -> tuple[int, bool]:
    """Where the string whose body starts at `i` ends (just past its closing `quote`), and
    whether it was closed at all (a one-line string ends at the end of its line)."""
    escapes = quote[0] == '"'
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote), True
        if len(quote) == 1 and text[i] == "\n":
            return i, False
        i += 1
    return len(text), False
