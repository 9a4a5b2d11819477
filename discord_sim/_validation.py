"""Discord's limits on message payloads and application commands, answered with Discord's 400 errors."""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


class ApiError(Exception):
    """An error answered to the client as Discord would: an HTTP status and a JSON body."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        return data


def form_error(field: str, code: str, message: str) -> ApiError:
    """A 400 "Invalid Form Body" (50035) about one top-level field."""
    return ApiError(400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": code, "message": message}]}})


class FormErrors:
    """Collects field errors into Discord's nested ``{"embeds": {"0": {"title": {"_errors": [...]}}}}``."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, path: list[str | int], code: str, message: str) -> None:
        node = self.errors
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: list[str | int], value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(400, 50035, "Invalid Form Body", self.errors)


def embed_length(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    return total


def validate_message(payload: dict[str, Any], *, has_files: bool, editing: bool = False) -> None:
    """Raise ApiError as Discord does for a message create/edit body that breaks its limits."""
    errors = FormErrors()
    content = payload.get("content")
    errors.max_length(["content"], content, 2000)
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        errors.add(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        path: list[str | int] = ["embeds", i]
        errors.max_length([*path, "title"], embed.get("title"), 256)
        errors.max_length([*path, "description"], embed.get("description"), 4096)
        errors.max_length([*path, "footer", "text"], (embed.get("footer") or {}).get("text"), 2048)
        errors.max_length([*path, "author", "name"], (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.add([*path, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, f in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                value = f.get(key)
                if not value:
                    errors.add([*path, "fields", j, key], "BASE_TYPE_REQUIRED", "This field is required")
                errors.max_length([*path, "fields", j, key], value, limit)
        total += embed_length(embed)
    if total > 6000:
        errors.add(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    _validate_components(payload.get("components") or [], errors)
    _validate_allowed_mentions(payload.get("allowed_mentions"), errors)
    errors.raise_if_any()
    if not editing:
        empty = not content and not embeds and not has_files and not payload.get("components")
        empty = empty and not payload.get("sticker_ids") and not payload.get("poll")
        if empty:
            raise ApiError(400, 50006, "Cannot send an empty message")


def _validate_components(rows: list[dict[str, Any]], errors: FormErrors) -> None:
    if len(rows) > 5:
        errors.add(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if row.get("type") != 1:
            continue
        children = row.get("components") or []
        if not children or len(children) > 5:
            errors.add(["components", i, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        for j, comp in enumerate(children):
            path: list[str | int] = ["components", i, "components", j]
            custom_id = comp.get("custom_id")
            if comp.get("type") == 2 and comp.get("style") != 5 and comp.get("style") != 6 and not custom_id:
                errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
            errors.max_length([*path, "custom_id"], custom_id, 100)
            errors.max_length([*path, "label"], comp.get("label"), 80)
            if custom_id:
                if custom_id in seen:
                    errors.add([*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Custom id cannot be duplicated")
                seen.add(custom_id)
            options = comp.get("options")
            if options is not None and len(options) > 25:
                errors.add([*path, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")


def _validate_allowed_mentions(am: dict[str, Any] | None, errors: FormErrors) -> None:
    if am is None:
        return
    parse = am.get("parse") or []
    for i, kind in enumerate(parse):
        if kind not in ("users", "roles", "everyone"):
            message = "Value must be one of ('users', 'roles', 'everyone')."
            errors.add(["allowed_mentions", "parse", i], "BASE_TYPE_CHOICES", message)
    for kind in ("users", "roles"):
        if kind in parse and am.get(kind):
            errors.add(
                ["allowed_mentions"],
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if len(am.get(kind) or []) > 100:
            errors.add(["allowed_mentions", kind], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")


def validate_commands(commands: list[dict[str, Any]]) -> None:
    """Raise ApiError for a bulk overwrite of application commands that Discord would refuse."""
    errors = FormErrors()
    if len(commands) > 100:
        errors.add([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        ctype = int(cmd.get("type", 1))
        name = cmd.get("name") or ""
        if (ctype, name) in seen:
            message = f"Application command names must be unique ({name})"
            errors.add([i, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME", message)
        seen.add((ctype, name))
        if ctype == 1:
            _validate_chat_input([i], cmd, errors, depth=0)
        elif not 1 <= len(name) <= 32:
            errors.add([i, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    errors.raise_if_any()


def _validate_chat_input(path: list[str | int], obj: dict[str, Any], errors: FormErrors, depth: int) -> None:
    name = obj.get("name") or ""
    if not COMMAND_NAME.match(name) or name != name.lower():
        errors.add([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid ({name!r})")
    description = obj.get("description") or ""
    if not 1 <= len(description) <= 100:
        errors.add([*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    options = obj.get("options") or []
    if len(options) > 25:
        errors.add([*path, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    names: set[str] = set()
    for j, opt in enumerate(options):
        opath: list[str | int] = [*path, "options", j]
        otype = opt.get("type")
        if otype in (1, 2):
            if depth >= 2 or (otype == 2 and depth >= 1):
                errors.add([*opath, "type"], "APPLICATION_COMMAND_OPTION_INVALID_NESTING", "Nested too deep")
            _validate_chat_input(opath, opt, errors, depth + 1)
            continue
        oname = opt.get("name") or ""
        if oname in names:
            errors.add([*opath, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Must be unique")
        names.add(oname)
        if not COMMAND_NAME.match(oname) or oname != oname.lower():
            errors.add([*opath, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Option name is invalid ({oname!r})")
        odesc = opt.get("description") or ""
        if not 1 <= len(odesc) <= 100:
            errors.add([*opath, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if opt.get("required"):
            if seen_optional:
                errors.add(
                    [*opath, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = opt.get("choices") or []
        if len(choices) > 25:
            errors.add([*opath, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if choices and opt.get("autocomplete"):
            message = "Autocomplete cannot be set with choices"
            errors.add([*opath, "autocomplete"], "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID", message)
