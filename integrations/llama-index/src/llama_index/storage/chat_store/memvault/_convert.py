"""Translation between LlamaIndex ``ChatMessage`` and memvault ``Message`` (no storage logic here).

A ChatMessage is stored as a memvault Message whose ``content`` is the plain text when the message is one text
block (so recall and other frameworks read it naturally) or the list of LlamaIndex block dicts otherwise. What
memvault's model has no field for (the exact LlamaIndex role, ``additional_kwargs``) goes to
``extras["llama_index"]``, so ``to_chat_message(to_message(m)) == m``. Messages written by other adapters
(no ``llama_index`` extras) are converted field by field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock

from memvault import Message
from memvault.errors import InvalidMessage

EXTRAS_KEY = "llama_index"
_CORE_ROLES = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
    "chatbot": "assistant",
    "model": "assistant",
    "developer": "system",
}


def core_role(role: str) -> str:
    """memvault's role for a LlamaIndex role (the exact one is kept in extras)."""
    return _CORE_ROLES.get(role, "user")


def to_message(message: ChatMessage, *, status: str | None = None) -> Message:
    """A memvault Message for ``message``; ``status="archived"`` marks it archived (see MemvaultAsyncChatStore)."""
    if not isinstance(message, ChatMessage):
        raise InvalidMessage(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    try:
        data = message.model_dump(mode="json")
    except Exception as exc:  # pydantic raises several types for values it cannot render as JSON
        raise InvalidMessage(f"ChatMessage cannot be stored as JSON ({exc}); keep additional_kwargs JSON-like") from None
    role = data["role"]
    blocks = data["blocks"]
    content: Any
    if len(blocks) == 1 and blocks[0] == {"block_type": "text", "text": blocks[0].get("text")}:
        content = blocks[0]["text"]
    else:
        content = blocks
    kwargs = data.get("additional_kwargs") or {}
    li: dict[str, Any] = {}
    if core_role(role) != role:
        li["role"] = role
    if kwargs:
        li["additional_kwargs"] = kwargs
    if isinstance(content, list):
        li["blocks"] = True
    if status is not None:
        li["status"] = status
    fields: dict[str, Any] = {}
    # mirrored into memvault's own fields so other adapters (and recall) understand tool messages
    tool_calls = kwargs.get("tool_calls")
    if isinstance(tool_calls, list) and all(isinstance(c, dict) for c in tool_calls) and tool_calls:
        fields["tool_calls"] = tool_calls
    if isinstance(kwargs.get("tool_call_id"), str):
        fields["tool_call_id"] = kwargs["tool_call_id"]
    if isinstance(kwargs.get("name"), str):
        fields["name"] = kwargs["name"]
    return Message(role=core_role(role), content=content, extras={EXTRAS_KEY: li}, **fields)


def _generic_block(block: Any) -> Any:
    if isinstance(block, str):
        return TextBlock(text=block)
    if isinstance(block, dict):
        kind = block.get("type") or block.get("block_type")
        if kind == "text" and isinstance(block.get("text"), str):
            return TextBlock(text=block["text"])
        if kind == "image_url":
            url = block.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str):
                if url.startswith("data:") and ";base64," in url:
                    head, b64 = url.split(";base64,", 1)
                    return ImageBlock(image=b64.encode(), image_mimetype=head[5:] or None)
                return ImageBlock(url=url)
        if kind == "image" and isinstance(block.get("url"), str):
            return ImageBlock(url=block["url"])
    return TextBlock(text=json.dumps(block, ensure_ascii=False, default=str))


def to_chat_message(message: Message) -> ChatMessage:
    """The LlamaIndex ChatMessage for a stored memvault Message."""
    li = message.extras.get(EXTRAS_KEY)
    if isinstance(li, dict):
        content = message.content
        role, extra = li.get("role", message.role), li.get("additional_kwargs", {})
        if isinstance(content, str):  # the common case, ~5x cheaper than validating block dicts
            return ChatMessage(role=role, blocks=[TextBlock(text=content)], additional_kwargs=extra)
        blocks = content
        return ChatMessage.model_validate(
            {"role": role, "additional_kwargs": extra, "blocks": blocks}
        )
    kwargs: dict[str, Any] = {}
    if message.tool_calls:
        kwargs["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        kwargs["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        kwargs["name"] = message.name
    content = message.content
    blocks = [TextBlock(text=content)] if isinstance(content, str) else [_generic_block(b) for b in content]
    return ChatMessage(role=message.role, blocks=blocks, additional_kwargs=kwargs)


def is_archived(message: Message) -> bool:
    li = message.extras.get(EXTRAS_KEY)
    return isinstance(li, dict) and li.get("status") == "archived"


# -- sync and async faces written once ------------------------------------------------------------------------------
# An adapter operation is a generator yielding (object, method, args, kwargs); `run` calls ``object.method``,
# `arun` awaits ``object.a<method>`` (memvault's naming of async twins).

Step = tuple[Any, str, tuple[Any, ...], dict[str, Any]]


def call(obj: Any, method: str, *args: Any, **kwargs: Any) -> Step:
    return (obj, method, args, kwargs)


def run(op: Any) -> Any:
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(result)
        except StopIteration as stop:
            return stop.value
        obj, method, args, kwargs = step
        error = None
        try:
            result = getattr(obj, method)(*args, **kwargs)
        except Exception as exc:
            result, error = None, exc


async def arun(op: Any) -> Any:
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(result)
        except StopIteration as stop:
            return stop.value
        obj, method, args, kwargs = step
        error = None
        try:
            result = await getattr(obj, "a" + method)(*args, **kwargs)
        except Exception as exc:
            result, error = None, exc


Runner = Callable[[Any], Any]
