"""Plain-text rendering of Slack messages and modals for a terminal.

Development and test tool: the local Slack fake prints what an approver would see in Slack, so a
person running the demo can read the request and pick a button to click. Pure functions: Slack-
shaped dicts in, a boxed string out. Only the Block Kit our app uses is rendered with care
(header, section text/fields/accessory, context, divider, actions, input, image, rich_text);
anything else shows as ``[<type> block]``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_WIDTH = 78

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]+))?>")


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn with its ``<...>`` references resolved to something readable.

    ``<@U0BOB>`` becomes ``@bob`` (``names`` maps ids to names; unknown ids stay ids),
    ``<!subteam^S0PLATFORM>`` ``@platform-oncall``, ``<#C0APPROVALS>`` ``#eksgate-approvals``,
    ``<https://x|label>`` ``label (https://x)``. Bold and italic markers are kept: they still read
    well as plain text.
    """
    names = names or {}

    def resolve(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + (label or names.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or names.get(target[1:], target[1:]))
        if target.startswith("!subteam^"):
            group = target[len("!subteam^") :]
            return "@" + (label or names.get(group, group)).lstrip("@")
        if target.startswith("!"):
            return "@" + (label or target[1:])
        return f"{label} ({target})" if label else target

    resolved = _LINK.sub(resolve, text)
    # Slack escapes exactly these three; undo them last so they cannot form new references.
    return resolved.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any, names: Mapping[str, str] | None) -> str:
    if isinstance(obj, Mapping):
        text = str(obj.get("text", ""))
        return mrkdwn_to_text(text, names) if obj.get("type") == "mrkdwn" else text
    return "" if obj is None else str(obj)


def _wrap(text: str, width: int) -> list[str]:
    """Wrap prose, but keep ``` code blocks ``` verbatim (split only when wider than the box)."""
    lines: list[str] = []
    in_code = False
    for raw in text.split("\n"):
        fence_count = raw.count("```")
        if in_code or fence_count:
            # A code line keeps its indentation (a reflowed diff is unreadable) and is indented
            # by two spaces so it stands apart from the prose around it.
            stripped = raw.replace("```", "")
            if stripped or not fence_count:
                step = width - 2
                lines.extend(
                    "  " + stripped[i : i + step] for i in range(0, max(len(stripped), 1), step)
                )
            if fence_count % 2:
                in_code = not in_code
            continue
        lines.extend(textwrap.wrap(raw, width) or [""])
    return lines


def _element_label(element: Mapping[str, Any], names: Mapping[str, str] | None) -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[{_text_of(element.get('text'), names)}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    placeholder = _text_of(element.get("placeholder"), names)
    return f"<{kind}{': ' + placeholder if placeholder else ''}>"


def _buttons_line(elements: Sequence[Any], names: Mapping[str, str] | None) -> list[str]:
    """``[Approve] [Deny]   (action ids: approve, deny)``: what a person needs to click."""
    labels = [_element_label(e, names) for e in elements if isinstance(e, Mapping)]
    ids = [str(e["action_id"]) for e in elements if isinstance(e, Mapping) and e.get("action_id")]
    line = " ".join(labels)
    return [f"{line}   (action ids: {', '.join(ids)})" if ids else line]


def _rich_text(element: Any) -> str:
    if isinstance(element, Mapping):
        if "text" in element and isinstance(element["text"], str):
            return element["text"]
        if element.get("type") == "user":
            return f"<@{element.get('user_id', '')}>"  # resolved to a name by mrkdwn_to_text
        if element.get("type") == "link":
            return str(element.get("text") or element.get("url", ""))
        inner = element.get("elements", [])
        joined = "".join(_rich_text(e) for e in inner)
        return f"```{joined}```" if element.get("type") == "rich_text_preformatted" else joined
    return ""


def render_blocks(
    blocks: Sequence[Any], *, width: int = DEFAULT_WIDTH, names: Mapping[str, str] | None = None
) -> list[str]:
    """Lines (at most ``width`` wide, button rows aside) for a list of Block Kit blocks."""
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"), names)
            lines.extend(_wrap(title, width))
            lines.append("=" * min(len(title), width))
        elif kind == "section":
            if "text" in block:
                lines.extend(_wrap(_text_of(block["text"], names), width))
            for field in block.get("fields", []) or []:
                # Fields are usually "*Label*\nvalue": one "label: value" line reads best.
                head, _, rest = _text_of(field, names).partition("\n")
                text = f"{head}: {rest.replace(chr(10), ' ')}" if rest else head
                lines.extend(_wrap(text, width))
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                lines.extend(_buttons_line([accessory], names))
        elif kind == "context":
            parts = [
                f"[image: {e.get('alt_text', '')}]"
                if e.get("type") == "image"
                else _text_of(e, names)
                for e in block.get("elements", []) or []
                if isinstance(e, Mapping)
            ]
            lines.extend(_wrap(" · ".join(parts), width))
        elif kind == "divider":
            lines.append("-" * width)
        elif kind == "actions":
            lines.extend(_buttons_line(block.get("elements", []) or [], names))
        elif kind == "input":
            raw_element = block.get("element")
            element: Mapping[str, Any] = raw_element if isinstance(raw_element, Mapping) else {}
            label = _text_of(block.get("label"), names)
            optional = " (optional)" if block.get("optional") else ""
            action = (
                f"   (action id: {element.get('action_id')})" if element.get("action_id") else ""
            )
            lines.append(f"{label}{optional}: {_element_label(element, names)}{action}")
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            text = "".join(_rich_text(e) for e in block.get("elements", []) or [])
            lines.extend(_wrap(mrkdwn_to_text(text, names), width))
        else:
            lines.append(f"[{kind} block]")
    return lines


def _box(title: str, lines: Sequence[str]) -> str:
    # Lines are already wrapped to the width; a long button row may widen the box instead of
    # being split, because a half-shown action id is worse than a wide box.
    inner = max([len(title) + 2, *(len(line) for line in lines), 20])
    top = f"+- {title} " + "-" * (inner - len(title) - 1) + "+"
    body = [f"| {line.ljust(inner)} |" for line in lines]
    bottom = "+" + "-" * (inner + 2) + "+"
    return "\n".join([top, *body, bottom])


def render_message(
    message: Mapping[str, Any],
    *,
    title: str | None = None,
    width: int = DEFAULT_WIDTH,
    names: Mapping[str, str] | None = None,
) -> str:
    """A boxed plain-text rendering of a Slack message (``text``, ``blocks``, ``ts`` ...).

    The box title names the channel, ``ts`` and edit count when ``message`` carries
    ``channel``/``ts``/``edited``; pass ``title`` to override it. Without blocks the message's
    ``text`` is shown, as Slack does.
    """
    if title is None:
        parts = [
            str(message.get("channel", "")),
            f"ts {message['ts']}" if message.get("ts") else "",
        ]
        if message.get("thread_ts") and message.get("thread_ts") != message.get("ts"):
            parts.append(f"in thread {message['thread_ts']}")
        edits = message.get("edit_count") or (1 if message.get("edited") else 0)
        if edits:
            parts.append(f"updated {edits}x")
        title = " · ".join(p for p in parts if p) or "message"
    blocks = message.get("blocks") or []
    if blocks:
        lines = render_blocks(blocks, width=width, names=names)
    else:
        lines = _wrap(mrkdwn_to_text(str(message.get("text", "")), names), width)
    return _box(title, lines)


def render_view(
    view: Mapping[str, Any], *, width: int = DEFAULT_WIDTH, names: Mapping[str, str] | None = None
) -> str:
    """A boxed plain-text rendering of a modal: title, blocks, then its Close/Submit buttons."""
    title = f"modal: {_text_of(view.get('title'), names)}"
    if view.get("id"):
        title += f" · {view['id']}"
    lines = render_blocks(view.get("blocks") or [], width=width, names=names)
    buttons = [f"[{_text_of(view[k], names)}]" for k in ("close", "submit") if view.get(k)]
    if buttons:
        lines.append(" ".join(buttons))
    if view.get("callback_id"):
        lines.append(f"(callback id: {view['callback_id']})")
    return _box(title, lines)
