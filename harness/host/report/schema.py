"""The JSON Schemas (draft 2020-12) of the documents the harness writes, and a check.

docs/results.md describes the fields in prose; the schema files in
harness/host/report/schemas/ say the same thing to a program, and ship with the
package:

    results   results.json of a scenario run       (results.schema.json)
    race      results.json of a race (mode "race")  (race.schema.json)
    validate  validate.json                         (validate.schema.json)

The writers do not call validate(): a schema that lags behind the code must
not turn a run that found a kernel bug into a crash. The unit tests validate
what the writers produce instead.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

KINDS: dict[str, str] = {
    "results": "results.schema.json",
    "race": "race.schema.json",
    "validate": "validate.schema.json",
}

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MESSAGE_LIMIT = 300  # jsonschema quotes the whole offending value; a scenario is long


class SchemaViolation(ValueError):
    """A document does not match its schema. `path` names the first bad field
    (e.g. "scenarios[0].verdict"; "" for the document itself)."""

    def __init__(self, kind: str, path: str, message: str, others: int = 0) -> None:
        self.kind = kind
        self.path = path
        self.message = message
        self.others = others
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        super().__init__(f"{kind} document: {path or '(document)'}: {message}{more}")


def schema_path(kind: str) -> Traversable:
    """The schema file of `kind`, wherever the package is installed."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r} (one of {', '.join(KINDS)})")
    return resources.files("harness.host.report").joinpath("schemas", KINDS[kind])


@cache
def _schema_text(kind: str) -> str:
    return schema_path(kind).read_text(encoding="utf-8")


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of `kind` (a fresh copy: callers may change it)."""
    return json.loads(_schema_text(kind))


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(schema(kind))


def kind_of(doc: Any) -> str:
    """Which schema a document the harness wrote belongs to, from its own fields."""
    if isinstance(doc, dict):
        if doc.get("mode") == "race":
            return "race"
        if doc.get("command") == "validate":
            return "validate"
    return "results"


def validate(doc: Any, kind: str | None = None) -> None:
    """Raise SchemaViolation naming the first bad field if `doc` (parsed JSON) does
    not match the schema of `kind` ("results", "race", "validate"; default: from
    the document's own "mode"/"command" fields)."""
    kind = kind or kind_of(doc)
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r} (one of {', '.join(KINDS)})")
    errors = list(_validator(kind).iter_errors(doc))
    if not errors:
        return
    located = sorted(((_position(doc, _field(e)), _field(e), e) for e in errors),
                     key=lambda t: t[0])
    _, path, first = located[0]
    message = first.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "..."
    raise SchemaViolation(kind, format_path(path), message, len(errors) - 1)


def _field(error: ValidationError) -> tuple[str | int, ...]:
    """Where the error is; for a missing field, the field itself rather than the
    object that lacks it, so the message names what to add."""
    path = tuple(error.absolute_path)
    instance, value = error.instance, error.validator_value
    # value is the schema's keyword value: a list for required, an object for
    # dependentRequired (jsonschema types it as possibly unset).
    if error.validator == "required" and isinstance(instance, dict) and isinstance(value, list):
        missing = [k for k in value if k not in instance]
        if missing:
            return (*path, missing[0])
    if (error.validator == "dependentRequired" and isinstance(instance, dict)
            and isinstance(value, dict)):
        for trigger, needed in value.items():
            missing = [k for k in needed if trigger in instance and k not in instance]
            if missing:
                return (*path, missing[0])
    return path


def _position(doc: Any, path: tuple[str | int, ...]) -> tuple[int, ...]:
    """Sort key: where the field is in the document (keys in the order written),
    so "first" means first in the file; a missing key sorts after its siblings."""
    key = []
    node = doc
    for part in path:
        if isinstance(node, dict):
            keys = list(node)
            key.append(keys.index(part) if part in node else len(keys))
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int):
            key.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            key.append(0)
            node = None
    return tuple(key)


def format_path(path: tuple[str | int, ...]) -> str:
    """("scenarios", 0, "verdict") -> 'scenarios[0].verdict'; odd keys are quoted
    (a held node's label such as "video.raw_capture_0-opened" has dots)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out
