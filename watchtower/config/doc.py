"""docs/configuration.md, generated from the config models so it cannot drift from them.

`python -m watchtower.config.doc > docs/configuration.md`; a test fails when the file is stale.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from watchtower.config import Fleet, Secret

HEADER = """# Fleet file reference

Generated from the models in `watchtower/config/` by `python -m watchtower.config.doc`; do not
edit by hand.
The fleet file is TOML. Unknown keys are errors. Secret values are never written inline: a key
of type *secret* takes `{ "$env" = "NAME" }` or `{ "$file" = "/run/secrets/name" }`.
Relative paths are relative to the fleet file.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    if annotation is Secret:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if origin in (Union, types.UnionType):
        parts = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + (" (optional)" if type(None) in get_args(annotation) else "")
    if origin is list:
        (inner,) = get_args(annotation) or (Any,)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        _k, v = get_args(annotation) or (Any, Any)
        return f"table of {_type_name(v)}"
    if origin is not None and str(origin).endswith("Literal"):
        return " \\| ".join(f'`"{a}"`' for a in get_args(annotation))
    if str(annotation).startswith("typing.Literal"):
        return " \\| ".join(f'`"{a}"`' for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    text = _default_text(field)
    return text if len(text) <= 60 else "(see `watchtower/config/fleet.py`)"


def _default_text(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if value is None:
            return ""
        if isinstance(value, BaseModel):
            return ""
        return f"`{value!r}`".replace("'", '"')
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return ""
        return "" if isinstance(value, BaseModel) or value in ([], {}) else f"`{value!r}`"
    return "**required**"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and \
                candidate is not Secret:
            return candidate
        for inner in get_args(candidate):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not Secret:
                return inner
    return None


def sections(model: type[BaseModel] = Fleet, prefix: str = "") -> list[tuple[str, list[str]]]:
    """(section title, table rows) for the model and every nested table, depth first."""
    rows: list[str] = []
    nested: list[tuple[str, list[str]]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub = _model_of(field.annotation)
        if sub is not None:
            path = f"{prefix}.{key}" if prefix else key
            is_list = get_origin(field.annotation) is list
            title = f"[[{path}]]" if is_list else f"[{path}]"
            if get_origin(field.annotation) is dict:
                title = f"[{path}.\"NAME\"]"
            inner = sections(sub, path)
            nested += [(title, inner[0][1]), *inner[1:]]
            continue
        doc = (field.description or "").replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {doc} |")
    return [(prefix or "top level", rows), *nested]


def render() -> str:
    out = [HEADER]
    for title, rows in sections():
        if title == "top level":
            continue
        out.append(f"\n## `{title}`\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        out.extend(rows)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
