"""A quick JSON Schema verdict, so that a run with a valid body never imports jsonschema.

Importing jsonschema costs a run more time than all of its own work; a body that is valid needs
no error messages. verdict() walks only the keywords the request schemas use, with jsonschema's
meaning for draft 2020-12 (formats are annotations, patterns are searched with Python's re), and
answers True (valid), False (invalid) or None (a keyword or value it does not judge). Only a True
skips jsonschema: every other answer, and every error message, comes from jsonschema itself. A
test compares the verdicts with jsonschema's on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Verdict = bool | None

# Keywords that never make an instance invalid.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "format", "contentEncoding"}
)


def _is_type(instance: Any, name: str) -> Verdict:
    if name == "integer":
        if isinstance(instance, float):
            return instance.is_integer()
        return isinstance(instance, int) and not isinstance(instance, bool)
    if name == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "object": dict,
        "array": list,
        "boolean": bool,
        "null": type(None),
    }
    kind = kinds.get(name)
    return None if kind is None else isinstance(instance, kind)


def _all(verdicts: Iterable[Verdict]) -> Verdict:
    """False if any is False, True if all are True, otherwise None."""
    unsure = False
    for verdict in verdicts:
        if verdict is False:
            return False
        unsure = unsure or verdict is None
    return None if unsure else True


class _Walker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def verdict(self, schema: Any, instance: Any) -> Verdict:
        if schema is True or schema is False:
            return bool(schema)
        if not isinstance(schema, Mapping):
            return None
        checks: list[Callable[[], Verdict]] = []
        for keyword, value in schema.items():
            if keyword in ANNOTATIONS:
                continue
            check = self._keyword(keyword, value, schema, instance)
            if check is None:
                return None
            checks.append(check)
        return _all(check() for check in checks)

    def _keyword(
        self, keyword: str, value: Any, schema: Mapping[str, Any], instance: Any
    ) -> Callable[[], Verdict] | None:
        """A check for one keyword, or None when this walker does not know the keyword."""
        text = isinstance(instance, str)
        number = isinstance(instance, int | float) and not isinstance(instance, bool)
        mapping = isinstance(instance, dict)
        checks: dict[str, Callable[[], Verdict]] = {
            "$ref": lambda: self._ref(value, instance),
            "type": lambda: self._type(value, instance),
            "const": lambda: (instance == value) if text and isinstance(value, str) else None,
            "pattern": lambda: (re.search(value, instance) is not None) if text else True,
            "minLength": lambda: len(instance) >= value if text else True,
            "maxLength": lambda: len(instance) <= value if text else True,
            "minimum": lambda: instance >= value if number else True,
            "required": lambda: all(k in instance for k in value) if mapping else True,
            "properties": lambda: self._properties(value, instance) if mapping else True,
            "additionalProperties": lambda: (
                self._additional(value, schema, instance) if mapping else True
            ),
            "propertyNames": lambda: (
                _all(self.verdict(value, key) for key in instance) if mapping else True
            ),
            "not": lambda: _negate(self.verdict(value, instance)),
            "oneOf": lambda: self._one_of(value, instance),
        }
        return checks.get(keyword)

    def _ref(self, reference: Any, instance: Any) -> Verdict:
        if not isinstance(reference, str) or not reference.startswith("#/$defs/"):
            return None
        target = self.root.get("$defs", {}).get(reference.removeprefix("#/$defs/"))
        return None if target is None else self.verdict(target, instance)

    def _type(self, names: Any, instance: Any) -> Verdict:
        if isinstance(names, str):
            return _is_type(instance, names)
        verdicts = [_is_type(instance, name) for name in names]
        if True in verdicts:
            return True
        return None if None in verdicts else False

    def _properties(self, properties: Mapping[str, Any], instance: dict[str, Any]) -> Verdict:
        return _all(self.verdict(properties[k], v) for k, v in instance.items() if k in properties)

    def _additional(
        self, additional: Any, schema: Mapping[str, Any], instance: dict[str, Any]
    ) -> Verdict:
        if "patternProperties" in schema:
            return None
        known = schema.get("properties", {})
        return _all(self.verdict(additional, v) for k, v in instance.items() if k not in known)

    def _one_of(self, schemas: list[Any], instance: Any) -> Verdict:
        verdicts = [self.verdict(s, instance) for s in schemas]
        if verdicts.count(True) > 1:
            return False
        if None in verdicts:
            return None
        return verdicts.count(True) == 1


def _negate(verdict: Verdict) -> Verdict:
    return None if verdict is None else not verdict


def verdict(schema: Mapping[str, Any], instance: Any) -> Verdict:
    """True if instance is valid under schema, False if invalid, None when unsure."""
    return _Walker(schema).verdict(schema, instance)
