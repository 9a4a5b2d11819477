"""Bodies checked against Discord's OpenAPI 3.1 specification (spec/openapi.json).

Requests as Discord checks them (a violation is answered 400 50035), and the simulator's own responses
against the operation's response schema for the status answered (a violation is recorded, never answered)."""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

log = logging.getLogger(__name__)

SPEC_URI = "urn:discord-openapi"
PARAMETER = re.compile(r"\{\w+\}")
SNOWFLAKE = "^(0|[1-9][0-9]*)$"

# Discord's own codes for each kind of violation ("errors" tree of a 50035 Invalid Form Body).
CODES: dict[str, tuple[str, str]] = {
    "required": ("BASE_TYPE_REQUIRED", "This field is required"),
    "maxLength": ("BASE_TYPE_MAX_LENGTH", "Must be {limit} or fewer in length."),
    "minLength": ("BASE_TYPE_MIN_LENGTH", "Must be {limit} or more in length."),
    "maxItems": ("BASE_TYPE_MAX_LENGTH", "Must be {limit} or fewer in length."),
    "minItems": ("BASE_TYPE_MIN_LENGTH", "Must be {limit} or more in length."),
    "maximum": ("NUMBER_TYPE_MAX", "Value should be less than or equal to {limit}."),
    "minimum": ("NUMBER_TYPE_MIN", "Value should be greater than or equal to {limit}."),
    "enum": ("BASE_TYPE_CHOICES", "Value must be one of {limit}."),
    "const": ("BASE_TYPE_CHOICES", "Value must be one of ({limit},)."),
    "pattern": ("STRING_TYPE_REGEX", "String value did not match validation regex."),
    "format": ("BASE_TYPE_INVALID", "Invalid value."),
}
TYPE_CODES = {
    "string": ("BASE_TYPE_STRING", "Could not interpret \"{value}\" as string."),
    "integer": ("NUMBER_TYPE_COERCE", "Value \"{value}\" is not int."),
    "number": ("NUMBER_TYPE_COERCE", "Value \"{value}\" is not a number."),
    "boolean": ("BASE_TYPE_BOOLEAN", "Must be either true or false."),
    "array": ("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"),
    "object": ("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"),
}


@functools.cache
def document() -> dict[str, Any]:
    """The vendored specification, with the deviations listed in the README applied (Discord's docs win)."""
    text = resources.files(__package__).joinpath("spec/openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    schemas = doc["components"]["schemas"]
    # Discord accepts integer snowflakes (discord.py sends some ids as JSON integers), not only strings.
    schemas["SnowflakeType"] = {"anyOf": [{"type": "string", "pattern": SNOWFLAKE}, {"type": "integer", "minimum": 0}]}
    return doc


@functools.cache
def response_document() -> dict[str, Any]:
    """The specification as responses are held to it: Discord always answers snowflakes as strings, so the
    integer snowflakes requests may carry are not allowed here; the README lists the other deviations."""
    text = resources.files(__package__).joinpath("spec/openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    schemas = doc["components"]["schemas"]
    schemas["RatelimitedError"] = copy.deepcopy(schemas["Error"]) | {"required": ["message"]}
    for name, fix in RESPONSE_DEVIATIONS.items():
        fix(schemas[name])
    return doc


def _string_error_codes(schema: dict[str, Any]) -> None:
    # A field's errors carry string codes ("BASE_TYPE_REQUIRED"), as the docs' examples show; the spec
    # reuses the top-level Error, whose code is an integer.
    schema["properties"]["_errors"]["items"] = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }


def _rate_limit_code_optional(schema: dict[str, Any]) -> None:
    # The docs' rate limit response lists "code?" (only for some limits) and their examples carry none.
    schema["allOf"][0] = {"$ref": "#/components/schemas/RatelimitedError"}


def _resource_without_message(schema: dict[str, Any]) -> None:
    # The docs' interaction callback resource has an optional message: a deferral (5, 6), autocomplete
    # choices (8) or a modal (9) create none, so its resource is only its type. The spec's branches all require one.
    schema["properties"]["resource"]["oneOf"].append({
        "type": "object",
        "properties": {"type": {"type": "integer", "enum": [5, 6, 8, 9]}},
        "required": ["type"],
        "additionalProperties": False,
    })


# Where the spec's response schemas disagree with Discord's documentation (listed in the README).
RESPONSE_DEVIATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "InnerErrors": _string_error_codes,
    "RatelimitedResponse": _rate_limit_code_optional,
    "InteractionCallbackResponse": _resource_without_message,
}


@functools.cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@functools.cache
def _response_registry() -> Registry[Any]:
    resource = Resource.from_contents(response_document(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@functools.cache
def _operations() -> dict[tuple[str, str], str]:
    """(METHOD, path with anonymous parameters) -> the spec's path template."""
    return {(method.upper(), PARAMETER.sub("{}", path)): path
            for path, item in document()["paths"].items() for method in item if method != "parameters"}


@functools.cache
def validator(method: str, template: str) -> Draft202012Validator | None:
    """The validator of an operation's JSON request body (built once, on first use), or None without one."""
    path = _operations().get((method.upper(), PARAMETER.sub("{}", template)))
    if path is None:
        return None
    operation = document()["paths"][path][method.lower()]
    content = (operation.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if schema is None:
        return None
    pointer = f"{SPEC_URI}#/paths/{_escape(path)}/{method.lower()}/requestBody/content/application~1json/schema"
    return Draft202012Validator({"$ref": pointer}, registry=_registry())


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def violations(method: str, template: str, body: Any) -> dict[str, Any] | None:
    """Discord's ``errors`` tree for a body that breaks its operation's schema, or None if it is valid."""
    check = validator(method, template)
    if check is None:
        return None
    tree: dict[str, Any] = {}
    for error in check.iter_errors(copy.deepcopy(body)):
        _add(tree, best_match([error]))
    return tree or None


def _add(tree: dict[str, Any], error: ValidationError) -> None:
    path = [str(p) for p in error.absolute_path]
    kind = str(error.validator)
    limit = error.validator_value
    if kind == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        path.append(missing.group(1) if missing else "?")
        code, message = CODES["required"]
    elif kind == "type":
        wanted = limit[0] if isinstance(limit, list) else limit
        code, message = TYPE_CODES.get(str(wanted), ("BASE_TYPE_INVALID", "Invalid value."))
    else:
        code, message = CODES.get(kind, ("BASE_TYPE_INVALID", "Invalid value."))
    node = tree
    for part in path:
        node = node.setdefault(part, {})
    text = message.format(limit=limit, value=str(error.instance)[:50])
    node.setdefault("_errors", []).append({"code": code, "message": text})


@functools.cache
def query_validator(method: str, template: str) -> tuple[Draft202012Validator, dict[str, str]] | None:
    """The validator of an operation's query parameters as one object, and each parameter's JSON type."""
    path = _operations().get((method.upper(), PARAMETER.sub("{}", template)))
    if path is None:
        return None
    operation = document()["paths"][path][method.lower()]
    base = f"{SPEC_URI}#/paths/{_escape(path)}/{method.lower()}/parameters"
    properties: dict[str, Any] = {}
    types: dict[str, str] = {}
    for index, param in enumerate(operation.get("parameters") or []):
        if param.get("in") != "query" or "schema" not in param:
            continue
        properties[param["name"]] = {"$ref": f"{base}/{index}/schema"}
        types[param["name"]] = str(param["schema"].get("type", "string"))
    if not properties:
        return None
    return Draft202012Validator({"type": "object", "properties": properties}, registry=_registry()), types


def query_violations(method: str, template: str, query: dict[str, str]) -> dict[str, Any] | None:
    """Discord's ``errors`` tree for query parameters the operation's schema refuses (``limit=101``), or None.

    Query strings carry text: integers and booleans are read as Discord reads them first (``1``/``true``);
    parameters the operation does not declare are ignored, as Discord ignores them."""
    found = query_validator(method, template)
    if found is None:
        return None
    check, types = found
    values: dict[str, Any] = {}
    tree: dict[str, Any] = {}
    for name, text in query.items():
        kind = types.get(name)
        if kind is None:
            continue
        if kind == "integer":
            try:
                values[name] = int(text)
            except ValueError:
                code, message = TYPE_CODES["integer"]
                tree[name] = {"_errors": [{"code": code, "message": message.format(value=text[:50])}]}
        elif kind == "boolean":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                code, message = TYPE_CODES["boolean"]
                tree[name] = {"_errors": [{"code": code, "message": message}]}
            else:
                values[name] = lowered in ("true", "1")
        else:
            values[name] = text
    for error in check.iter_errors(values):
        _add(tree, best_match([error]))
    return tree or None


@functools.cache
def response_validator(method: str, template: str, status: int) -> Draft202012Validator | None:
    """The validator of an operation's JSON response for ``status`` (the exact code, else ``4XX``-style
    ranges), built once on first use; None when the spec gives that answer no JSON schema (204, 5xx)."""
    path = _operations().get((method.upper(), PARAMETER.sub("{}", template)))
    if path is None:
        return None
    doc = response_document()
    responses = doc["paths"][path][method.lower()].get("responses") or {}
    key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
    if key is None:
        return None
    pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{key}"
    answer = responses[key]
    if "$ref" in answer:  # a shared response (#/components/responses/...)
        pointer = str(answer["$ref"]).removeprefix("#")
        answer = _resolve(doc, pointer)
    if (answer.get("content") or {}).get("application/json", {}).get("schema") is None:
        return None
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}/content/application~1json/schema"},
                                registry=_response_registry())


def _resolve(doc: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = doc
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


def response_violations(method: str, template: str, status: int, body: Any) -> list[str]:
    """What in a response body breaks the operation's response schema for ``status``: one line per
    error, ``path.to.field: message``; empty when it conforms or the spec gives no schema."""
    check = response_validator(method, template, status)
    if check is None:
        return []
    found: list[str] = []
    for error in check.iter_errors(body):
        for leaf in _leaves(error):
            where = ".".join(str(p) for p in leaf.absolute_path) or "(body)"
            found.append(f"{where}: {leaf.message[:200]}")
    return found


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors that say what is wrong: inside a ``oneOf``/``anyOf``, those of the branch the body meant
    (the one whose discriminating ``const``/``enum`` it matched, with the fewest errors), not the whole."""
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    meant = [b for b in branches.values() if not any(e.validator in ("const", "enum") for e in b)]
    chosen = min(meant or list(branches.values()), key=len)
    return [leaf for sub in chosen for leaf in _leaves(sub)]
