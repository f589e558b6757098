"""Block Kit limits that real Slack enforces, so the local fake rejects what Slack would reject.

Development and test tool. Slack refuses a message or modal that breaks a limit (a header
over 150 characters, a modal title over 24, more than 50 blocks...) with ``invalid_blocks`` or
``invalid_arguments``; a fake that accepted them would let such bugs reach production. This
covers the limits our messages and the Deny modal can plausibly hit, not all of Block Kit:
unknown block and element types pass unchecked.

Errors read like Slack's ``response_metadata.messages``:
``[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_INPUT_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_PLAIN_TEXT_INPUT_LENGTH = 3000


def _err(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _too_long(limit: int) -> str:
    return f"must be less than {limit + 1} characters"


def _check_text(
    obj: Any, pointer: str, limit: int, errors: list[str], *, plain_only: bool = False
) -> None:
    """A composition text object: ``{"type": "plain_text"|"mrkdwn", "text": ...}``."""
    if not isinstance(obj, Mapping):
        errors.append(_err("must be an object", pointer))
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        errors.append(_err(f"must be one of {', '.join(allowed)}", f"{pointer}/type"))
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(_err("must be a non-empty string", f"{pointer}/text"))
    elif len(text) > limit:
        errors.append(_err(_too_long(limit), f"{pointer}/text"))


def _check_element(element: Any, pointer: str, errors: list[str], action_ids: set[str]) -> None:
    if not isinstance(element, Mapping):
        errors.append(_err("must be an object", pointer))
        return
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or len(action_id) > MAX_ACTION_ID:
            errors.append(_err(_too_long(MAX_ACTION_ID), f"{pointer}/action_id"))
        elif action_id in action_ids:
            # Slack requires action ids to be unique within their block.
            errors.append(_err("action_id must be unique", f"{pointer}/action_id"))
        else:
            action_ids.add(action_id)
    kind = element.get("type")
    if kind == "button":
        _check_text(
            element.get("text"), f"{pointer}/text", MAX_BUTTON_TEXT, errors, plain_only=True
        )
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
            errors.append(_err(_too_long(MAX_BUTTON_VALUE), f"{pointer}/value"))
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_BUTTON_URL):
            errors.append(_err(_too_long(MAX_BUTTON_URL), f"{pointer}/url"))
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(_err("must be one of primary, danger", f"{pointer}/style"))
    elif kind == "plain_text_input":
        if "placeholder" in element:
            _check_text(
                element["placeholder"],
                f"{pointer}/placeholder",
                MAX_PLACEHOLDER,
                errors,
                plain_only=True,
            )
        max_length = element.get("max_length")
        if max_length is not None and (
            not isinstance(max_length, int) or not 1 <= max_length <= MAX_PLAIN_TEXT_INPUT_LENGTH
        ):
            errors.append(
                _err(
                    f"must be between 1 and {MAX_PLAIN_TEXT_INPUT_LENGTH}", f"{pointer}/max_length"
                )
            )


def _check_block(block: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(block, Mapping):
        errors.append(_err("must be an object", pointer))
        return
    kind = block.get("type")
    if not isinstance(kind, str):
        errors.append(_err("missing required field: type", pointer))
        return
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        errors.append(_err(_too_long(MAX_BLOCK_ID), f"{pointer}/block_id"))
    action_ids: set[str] = set()
    if kind == "header":
        _check_text(block.get("text"), f"{pointer}/text", MAX_HEADER_TEXT, errors, plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(_err("must provide either text or fields", pointer))
        if "text" in block:
            _check_text(block["text"], f"{pointer}/text", MAX_SECTION_TEXT, errors)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, Sequence) or len(fields) > MAX_SECTION_FIELDS:
                errors.append(
                    _err(f"must have at most {MAX_SECTION_FIELDS} items", f"{pointer}/fields")
                )
            else:
                for i, f in enumerate(fields):
                    _check_text(f, f"{pointer}/fields/{i}", MAX_FIELD_TEXT, errors)
        if "accessory" in block:
            _check_element(block["accessory"], f"{pointer}/accessory", errors, action_ids)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, Sequence) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            errors.append(
                _err(f"must have between 1 and {MAX_CONTEXT_ELEMENTS} items", f"{pointer}/elements")
            )
        else:
            for i, e in enumerate(elements):
                if isinstance(e, Mapping) and e.get("type") in ("plain_text", "mrkdwn"):
                    _check_text(e, f"{pointer}/elements/{i}", MAX_SECTION_TEXT, errors)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, Sequence) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
            errors.append(
                _err(f"must have between 1 and {MAX_ACTIONS_ELEMENTS} items", f"{pointer}/elements")
            )
        else:
            for i, e in enumerate(elements):
                _check_element(e, f"{pointer}/elements/{i}", errors, action_ids)
    elif kind == "input":
        _check_text(
            block.get("label"), f"{pointer}/label", MAX_INPUT_LABEL, errors, plain_only=True
        )
        if "element" not in block:
            errors.append(_err("missing required field: element", pointer))
        else:
            _check_element(block["element"], f"{pointer}/element", errors, action_ids)


def validate_blocks(blocks: Any, *, in_view: bool = False, pointer: str = "/blocks") -> list[str]:
    """Slack-style error messages for ``blocks`` (empty when Slack would accept them)."""
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)):
        return [_err("must be an array", pointer)]
    errors: list[str] = []
    limit = MAX_VIEW_BLOCKS if in_view else MAX_MESSAGE_BLOCKS
    if len(blocks) > limit:
        errors.append(_err(f"must have at most {limit} items", pointer))
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        _check_block(block, f"{pointer}/{i}", errors)
        block_id = block.get("block_id") if isinstance(block, Mapping) else None
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                errors.append(_err("block_id must be unique", f"{pointer}/{i}/block_id"))
            seen_block_ids.add(block_id)
    return errors


def validate_view(view: Any) -> list[str]:
    """Slack-style error messages for a modal passed to ``views.open``/``views.update``."""
    if not isinstance(view, Mapping):
        return [_err("must be an object", "/view")]
    errors: list[str] = []
    if view.get("type") != "modal":
        errors.append(_err("must be modal", "/view/type"))
    _check_text(view.get("title"), "/view/title", MAX_VIEW_TITLE, errors, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            _check_text(view[key], f"/view/{key}", MAX_VIEW_TITLE, errors, plain_only=True)
    blocks = view.get("blocks")
    errors.extend(validate_blocks(blocks, in_view=True, pointer="/view/blocks"))
    has_input = isinstance(blocks, Sequence) and any(
        isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
    )
    if has_input and "submit" not in view:
        errors.append(_err("submit is required when the view has input blocks", "/view/submit"))
    metadata = view.get("private_metadata")
    if metadata is not None and (
        not isinstance(metadata, str) or len(metadata) > MAX_PRIVATE_METADATA
    ):
        errors.append(_err(_too_long(MAX_PRIVATE_METADATA), "/view/private_metadata"))
    callback_id = view.get("callback_id")
    if callback_id is not None and (
        not isinstance(callback_id, str) or len(callback_id) > MAX_CALLBACK_ID
    ):
        errors.append(_err(_too_long(MAX_CALLBACK_ID), "/view/callback_id"))
    return errors
