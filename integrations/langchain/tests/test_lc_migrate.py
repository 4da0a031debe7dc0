"""Importing existing LangChain histories: langchain-postgres tables (real PostgreSQL, written by
langchain-postgres itself) and Redis histories (real Redis)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_memvault import MemvaultChatMessageHistory, import_langchain_postgres, import_langchain_redis
from langchain_memvault.migrate import messages_from_redis_json_docs

from memvault import Memory
from memvault.errors import CorruptData

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")

HISTORY: list[BaseMessage] = [
    SystemMessage("be brief"),
    HumanMessage("hi, I'm Ada", id="h1", additional_kwargs={"k": [1, 2]}),
    AIMessage(
        [{"type": "text", "text": "checking"}],
        tool_calls=[{"name": "lookup", "args": {"q": "Ada"}, "id": "c1"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        response_metadata={"model": "fake"},
    ),
    ToolMessage("found", tool_call_id="c1", artifact={"rows": 1}, status="success"),
    ChatMessage(role="critic", content="fine"),
    AIMessage("Hello Ada"),
]


def test_import_langchain_postgres(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    from langchain_postgres import PostgresChatMessageHistory

    table = f"lc_history_{uuid.uuid4().hex[:8]}"
    sid, other = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(postgres_url) as conn:
        PostgresChatMessageHistory.create_tables(conn, table)
        PostgresChatMessageHistory(table, sid, sync_connection=conn).add_messages(HISTORY)
        PostgresChatMessageHistory(table, other, sync_connection=conn).add_messages([HumanMessage("other")])
        with conn.cursor() as cur:
            cur.execute(f"SELECT created_at FROM {table} WHERE session_id = %s ORDER BY id", (sid,))
            stamps = [row[0] for row in cur.fetchall()]
        try:
            mem = Memory("memory://")
            assert import_langchain_postgres(postgres_url, table, sid, mem) == {sid: len(HISTORY)}
            imported = MemvaultChatMessageHistory(sid, memory=mem)
            assert imported.messages == HISTORY
            assert [type(m) for m in imported.messages] == [type(m) for m in HISTORY]
            assert [m.created_at for m in imported.session.messages()] == stamps
            # again, through the caller's connection: nothing duplicated
            assert import_langchain_postgres(conn, table, sid, mem) == {sid: len(HISTORY)}
            assert len(imported.messages) == len(HISTORY)
            # every session of the table, into another memory
            mem2 = Memory("memory://")
            assert import_langchain_postgres(conn, table, memory=mem2) == {sid: len(HISTORY), other: 1}
            assert MemvaultChatMessageHistory(other, memory=mem2).messages == [HumanMessage("other")]
            # a renamed target session
            import_langchain_postgres(conn, table, sid, mem2, target_session_id="ada")
            assert MemvaultChatMessageHistory("ada", memory=mem2).messages == HISTORY
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE {table}")
            conn.commit()


def test_import_redis_list_layout(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"lcmig{uuid.uuid4().hex[:8]}:"
    # langchain-community's RedisChatMessageHistory layout: LPUSH of json.dumps(message_to_dict(m))
    for message in HISTORY:
        client.lpush(f"{prefix}s1", json.dumps(message_to_dict(message)))
    try:
        mem = Memory("memory://")
        assert import_langchain_redis(redis_url, "s1", mem, key_prefix=prefix) == len(HISTORY)
        assert MemvaultChatMessageHistory("s1", memory=mem).messages == HISTORY
        # after more turns, a second import only adds the new ones
        client.lpush(f"{prefix}s1", json.dumps(message_to_dict(HumanMessage("later"))))
        assert import_langchain_redis(client, "s1", mem, key_prefix=prefix, layout="list") == len(HISTORY) + 1
        assert MemvaultChatMessageHistory("s1", memory=mem).messages == [*HISTORY, HumanMessage("later")]
    finally:
        client.delete(f"{prefix}s1")
        client.close()


def test_redis_json_documents_translate() -> None:
    """langchain-redis stores one JSON document per message (needs RedisJSON, absent here): the translation of
    its documented shape is checked directly."""
    docs: list[dict[str, Any]] = [
        {
            "type": "ai",
            "message_id": "01B",
            "data": {"content": "hello", "additional_kwargs": {}, "type": "ai"},
            "session_id": "s",
            "timestamp": 1_700_000_001.5,
        },
        {
            "type": "human",
            "message_id": "01A",
            "data": json.dumps({"content": "hi", "additional_kwargs": {"x": 1}, "type": "human"}),
            "session_id": "s",
            "timestamp": 1_700_000_000.0,
        },
        {
            "type": "tool",
            "message_id": "01C",
            "data": {"content": "r", "additional_kwargs": {}, "type": "tool", "tool_call_id": "c", "status": "error"},
            "session_id": "s",
            "timestamp": 1_700_000_002.0,
        },
    ]
    messages = messages_from_redis_json_docs(docs, "chat:", "s")
    mem = Memory("memory://")
    mem.session("s").extend(messages)
    got = MemvaultChatMessageHistory("s", memory=mem).messages
    assert got == [
        HumanMessage("hi", additional_kwargs={"x": 1}),
        AIMessage("hello"),
        ToolMessage("r", tool_call_id="c", status="error"),
    ]
    assert messages[0].created_at == datetime.fromtimestamp(1_700_000_000.0, timezone.utc)
    with pytest.raises(CorruptData):
        messages_from_redis_json_docs([{"message_id": "x", "data": {}}], "chat:", "s")
