"""Finding the published specifications in shared/ and checking responses against them.

shared/ sits beside the clone (`../shared`) on developer machines and in CI; `WATCHTOWER_SHARED`
overrides the location. Where it is absent the spec tests skip, except under CI=true, where a
missing spec must fail the run rather than pass it silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _missing(what: str) -> None:
    message = f"{what} not found (set WATCHTOWER_SHARED or place shared/ beside the clone)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def shared_dir() -> Path:
    candidates = []
    if os.environ.get("WATCHTOWER_SHARED"):
        candidates.append(Path(os.environ["WATCHTOWER_SHARED"]))
    candidates.append(REPO_ROOT / ".." / "shared")
    for candidate in candidates:
        if (candidate / "specs").is_dir():
            return candidate.resolve()
    _missing("shared/specs")
    raise AssertionError("unreachable")


def load_json_spec(relative: str) -> Any:
    path = shared_dir() / "specs" / relative
    if not path.is_file():
        _missing(str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml_spec(relative: str) -> Any:
    path = shared_dir() / "specs" / relative
    if not path.is_file():
        _missing(str(path))
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PyYAML is needed to read the Garage v1 spec")
        pytest.skip("PyYAML not installed")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def nodeinfo_errors(document: Any, version: str) -> list[str]:
    """Schema violations of a NodeInfo document against the published schema of `version`."""
    import jsonschema

    schema = load_json_spec(f"nodeinfo/schema-{version}.json")
    cls = jsonschema.validators.validator_for(schema)
    return [e.message for e in cls(schema).iter_errors(document)]


def openapi_response_schema(spec: dict[str, Any], path: str, method: str = "get",
                            status: str = "200") -> dict[str, Any]:
    response = spec["paths"][path][method]["responses"][status]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def garage_v2_errors(instance: Any, path: str) -> list[str]:
    """Validate against the v2 OpenAPI 3.1 document: its schemas are JSON Schema 2020-12."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = load_json_spec("garage/garage-admin-v2.json")
    base = "urn:watchtower:garage-admin-v2"
    registry: Registry[Any] = Registry().with_resource(
        base, Resource.from_contents(spec, default_specification=DRAFT202012))
    ref = openapi_response_schema(spec, path)["$ref"]
    validator = jsonschema.Draft202012Validator({"$ref": base + ref}, registry=registry)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _null_allowed(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    return bool(schema.get("nullable")) or types == "null" or (
        isinstance(types, list) and "null" in types)


def missing_required(instance: Any, schema: dict[str, Any], root: dict[str, Any],
                     where: str = "$") -> list[str]:
    """Walk `schema` (OpenAPI 3.0 or 3.1 flavour) and list every required property that
    `instance` lacks, at any depth: through $ref, oneOf/anyOf, properties and items."""
    schema = _resolve(schema, root)
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        resolved = [_resolve(o, root) for o in options]
        if instance is None and any(_null_allowed(o) for o in resolved):
            return []
        candidates = [o for o in resolved if o.get("type") != "null"]
        results = [missing_required(instance, o, root, where) for o in candidates]
        return min(results, key=len) if results else []
    if instance is None:
        return [] if _null_allowed(schema) else [f"{where} is null"]
    problems: list[str] = []
    if isinstance(instance, dict):
        problems += [f"{where}.{name}" for name in schema.get("required", [])
                     if name not in instance]
        for name, sub in schema.get("properties", {}).items():
            if name in instance:
                problems += missing_required(instance[name], sub, root, f"{where}.{name}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += missing_required(item, schema["items"], root, f"{where}[{i}]")
    return problems
