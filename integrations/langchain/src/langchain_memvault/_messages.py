"""Lossless translation between LangChain messages and memvault :class:`~memvault.Message`.

Portable fields go to memvault's own fields (role, content, name, tool_calls, tool_call_id) so other adapters and
recall can read them; everything else LangChain knows about a message (its type, id, additional_kwargs,
response_metadata, usage_metadata, invalid_tool_calls, artifact, status, ChatMessage role, chunk fields) goes to
``extras["langchain"]`` and only when it differs from the field's default, which keeps stored bodies small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, messages_from_dict

from memvault import Message
from memvault.errors import InvalidMessage

EXTRAS_KEY = "langchain"

_ROLE_OF_TYPE = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "developer": "system",
}
_ROLE_OF_CHAT_ROLE = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_TYPE_OF_ROLE = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}
# fields stored in memvault's own Message fields rather than in extras
_PORTABLE = ("content", "name", "tool_calls", "tool_call_id")


_CHUNK_TYPES = {
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
    "ChatMessageChunk": "chat",
    "FunctionMessageChunk": "function",
    "ToolMessageChunk": "tool",
}


def _base_type(lc_type: str) -> str:
    return _CHUNK_TYPES.get(lc_type, lc_type)


def _role_of(message: BaseMessage) -> str:
    lc_type = _base_type(message.type)
    if lc_type == "chat":
        return _ROLE_OF_CHAT_ROLE.get(str(getattr(message, "role", "")).lower(), "user")
    return _ROLE_OF_TYPE.get(lc_type, "user")


def _defaults(cls: type[BaseMessage]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if info.default_factory is not None:
            found[name] = info.default_factory()  # type: ignore[call-arg]
        elif not info.is_required():
            found[name] = info.default
    return found


_DEFAULTS_CACHE: dict[type[BaseMessage], dict[str, Any]] = {}


def to_memvault(message: BaseMessage) -> Message:
    """A memvault Message holding everything ``message`` holds. Raises InvalidMessage for non-LangChain input."""
    if not isinstance(message, BaseMessage):
        raise InvalidMessage(f"expected a LangChain BaseMessage, got {type(message).__name__}")
    cls = type(message)
    defaults = _DEFAULTS_CACHE.get(cls)
    if defaults is None:
        defaults = _DEFAULTS_CACHE[cls] = _defaults(cls)
    data = message.model_dump()
    lc: dict[str, Any] = {"type": data.pop("type")}
    for key, value in data.items():
        if key in _PORTABLE:
            continue
        if key in defaults and value == defaults[key] and type(value) is type(defaults[key]):
            continue
        lc[key] = value
    tool_calls = data.get("tool_calls") or None
    return Message(
        role=_role_of(message),
        content=data["content"],
        name=data.get("name"),
        tool_calls=tool_calls,
        tool_call_id=data.get("tool_call_id"),
        extras={EXTRAS_KEY: lc},
    )


def to_memvault_many(messages: Iterable[BaseMessage]) -> list[Message]:
    return [to_memvault(m) for m in messages]


def _foreign_fields(message: Message) -> dict[str, Any]:
    """LangChain fields for a message written by something other than this adapter (the core, LlamaIndex, ...)."""
    lc_type = _TYPE_OF_ROLE.get(message.role, "human")
    data: dict[str, Any] = {"type": lc_type}
    if message.tool_calls:
        calls = message.tool_calls
        if lc_type == "ai" and all(isinstance(c, dict) and "name" in c and "args" in c for c in calls):
            data["tool_calls"] = calls
        else:  # some other framework's shape: keep it visible rather than guessing
            data["additional_kwargs"] = {"tool_calls": calls}
    if lc_type == "tool":
        data["tool_call_id"] = message.tool_call_id or ""
    return data


def from_memvault(message: Message) -> BaseMessage:
    """The LangChain message that ``message`` was made from (or the natural one for messages written elsewhere)."""
    lc = message.extras.get(EXTRAS_KEY) if isinstance(message.extras, dict) else None
    data: dict[str, Any] = dict(lc) if isinstance(lc, dict) and "type" in lc else _foreign_fields(message)
    data["content"] = message.content
    if message.name is not None:
        data["name"] = message.name
    if message.tool_calls and isinstance(lc, dict):
        data["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    lc_type = data["type"]
    return messages_from_dict([{"type": lc_type, "data": data}])[0]


def from_memvault_many(messages: Sequence[Message]) -> list[BaseMessage]:
    return [from_memvault(m) for m in messages]
