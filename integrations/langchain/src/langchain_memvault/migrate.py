"""Import chat histories written by langchain-postgres and langchain-redis / langchain-community into memvault.

Every imported message gets a memvault id derived from where it came from (table + row id, key + message id), and
memvault's append is idempotent on message id: running an import twice, or again after an interruption, never
duplicates anything. Timestamps are kept when the source has them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import messages_from_dict

from langchain_memvault._memory import resolve_memory
from langchain_memvault._messages import to_memvault
from memvault import Memory, Message
from memvault.errors import BackendUnavailable, CorruptData, InvalidURL

__all__ = ["import_langchain_postgres", "import_langchain_redis", "message_from_langchain_dict"]

logger = logging.getLogger("memvault.langchain.migrate")
BATCH = 500


def message_from_langchain_dict(
    item: dict[str, Any], *, id: str, created_at: datetime | None = None
) -> Message:
    """A memvault Message from LangChain's ``message_to_dict`` shape (``{"type": ..., "data": {...}}``)."""
    try:
        lc_message = messages_from_dict([item])[0]
    except Exception as exc:
        raise CorruptData(f"not a LangChain message dict ({exc}): {str(item)[:120]!r}") from None
    message = to_memvault(lc_message)
    message.id = id
    if created_at is not None:
        message.created_at = created_at if created_at.tzinfo else created_at.replace(tzinfo=timezone.utc)
    return message


def _batches(items: Iterable[Message], size: int = BATCH) -> Iterator[list[Message]]:
    batch: list[Message] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _store(memory: Memory, target: str, messages: Iterable[Message], namespace: str | None, user_id: str | None) -> int:
    session = memory.session(target, namespace=namespace, user_id=user_id)
    count = 0
    for batch in _batches(messages):
        session.extend(batch)
        count += len(batch)
    return count


# -- langchain-postgres ------------------------------------------------------------------------------------------


def import_langchain_postgres(
    conn_or_url: Any,
    table: str,
    session_id: str | None = None,
    memory: Memory | None = None,
    *,
    url: str | None = None,
    namespace: str | None = None,
    user_id: str | None = None,
    target_session_id: str | None = None,
) -> dict[str, int]:
    """Copy ``PostgresChatMessageHistory`` rows (langchain-postgres) into memvault.

    ``conn_or_url``: a psycopg 3 connection or a ``postgresql://`` URL; ``table``: the history table name;
    ``session_id``: one session (its UUID), or None for every session in the table. Messages land in memvault
    session ``target_session_id`` (default: the same id) of ``memory`` (or ``url``; default: the embedded store),
    in row order, with their ``created_at``. Returns ``{session_id: rows read}``. Safe to run again.
    """
    import psycopg
    from psycopg import sql

    memory = resolve_memory(memory, url)
    if target_session_id is not None and session_id is None:
        raise InvalidURL("target_session_id needs session_id (one source session maps to one target session)")
    owned = isinstance(conn_or_url, str)
    try:
        conn = psycopg.connect(conn_or_url) if owned else conn_or_url
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(f"cannot connect to the langchain-postgres database: {exc}") from None
    name = sql.Identifier(*table.split(".")) if "." in table else sql.Identifier(table)
    counts: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            if session_id is None:
                cur.execute(sql.SQL("SELECT DISTINCT session_id::text FROM {} ORDER BY 1").format(name))
                sessions = [row[0] for row in cur.fetchall()]
            else:
                sessions = [str(session_id)]
        for sid in sessions:
            counts[sid] = _store(
                memory, target_session_id or sid, _postgres_rows(conn, name, sql, table, sid), namespace, user_id
            )
            logger.info("imported %d messages of langchain-postgres session %s from %s", counts[sid], sid, table)
    finally:
        if owned:
            conn.close()
        else:  # leave the caller's connection usable (no open read transaction)
            conn.rollback()
    return counts


def _postgres_rows(conn: Any, name: Any, sql: Any, table: str, sid: str) -> Iterator[Message]:
    query = sql.SQL("SELECT id, message, created_at FROM {} WHERE session_id = %s AND id > %s ORDER BY id LIMIT %s")
    last = -1
    while True:
        with conn.cursor() as cur:
            cur.execute(query.format(name), (sid, last, BATCH))
            rows = cur.fetchall()
        for row_id, payload, created_at in rows:
            item = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
            yield message_from_langchain_dict(item, id=f"lcpg:{table}:{row_id}", created_at=created_at)
            last = row_id
        if len(rows) < BATCH:
            return


# -- langchain-redis / langchain-community -----------------------------------------------------------------------


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def messages_from_redis_json_docs(docs: Sequence[dict[str, Any]], key_prefix: str, session_id: str) -> list[Message]:
    """memvault Messages from langchain-redis documents (``{"type", "message_id", "data", "timestamp", ...}``),
    oldest first."""
    ordered = sorted(docs, key=lambda d: (float(d.get("timestamp") or 0), str(d.get("message_id", ""))))
    out = []
    for doc in ordered:
        data = doc.get("data")
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or "type" not in doc:
            raise CorruptData(f"not a langchain-redis message document: {str(doc)[:120]!r}")
        stamp = doc.get("timestamp")
        created = datetime.fromtimestamp(float(stamp), timezone.utc) if stamp is not None else None
        out.append(
            message_from_langchain_dict(
                {"type": doc["type"], "data": data},
                id=f"lcredis:{key_prefix}{session_id}:{doc.get('message_id')}",
                created_at=created,
            )
        )
    return out


def import_langchain_redis(
    client_or_url: Any,
    session_id: str,
    memory: Memory | None = None,
    *,
    url: str | None = None,
    layout: str = "auto",
    key_prefix: str | None = None,
    namespace: str | None = None,
    user_id: str | None = None,
    target_session_id: str | None = None,
) -> int:
    """Copy one Redis chat history into memvault; returns how many messages were read. Safe to run again.

    Layouts: ``"list"`` is langchain-community's ``RedisChatMessageHistory`` (a list at ``message_store:<id>``,
    newest first, plain Redis); ``"json"`` is langchain-redis's (one RedisJSON document per message at
    ``chat:<id>:<ulid>``, needs the source's RedisJSON module); ``"auto"`` picks whichever exists.
    ``client_or_url``: a ``redis.Redis`` client or a ``redis://`` URL.
    """
    import redis

    memory = resolve_memory(memory, url)
    owned = isinstance(client_or_url, str)
    client = redis.Redis.from_url(client_or_url) if owned else client_or_url
    try:
        if layout not in ("auto", "list", "json"):
            raise InvalidURL(f"layout must be 'auto', 'list' or 'json', got {layout!r}")
        try:
            if layout in ("auto", "list"):
                list_key = f"{key_prefix if key_prefix is not None else 'message_store:'}{session_id}"
                if layout == "list" or client.exists(list_key):
                    return _store(
                        memory, target_session_id or session_id, _redis_list(client, list_key), namespace, user_id
                    )
            prefix = key_prefix if key_prefix is not None else "chat:"
            docs = _redis_json_docs(client, prefix, session_id)
        except redis.exceptions.ConnectionError as exc:
            raise BackendUnavailable(f"cannot reach the Redis holding the LangChain history: {exc}") from None
        messages = messages_from_redis_json_docs(docs, prefix, session_id)
        return _store(memory, target_session_id or session_id, messages, namespace, user_id)
    finally:
        if owned:
            client.close()


def _redis_list(client: Any, key: str) -> Iterator[Message]:
    # LPUSH keeps the newest message at index 0: walk from the tail (oldest) so ids stay stable as the list grows
    length = client.llen(key)
    for end in range(length - 1, -1, -BATCH):
        start = max(0, end - BATCH + 1)
        chunk = client.lrange(key, start, end)
        for offset, raw in enumerate(reversed(chunk)):
            position = length - 1 - (end - offset)  # 0 = oldest
            yield message_from_langchain_dict(json.loads(_text(raw)), id=f"lcredis:{key}:{position}")


def _redis_json_docs(client: Any, prefix: str, session_id: str) -> list[dict[str, Any]]:
    pattern = _escape_glob(f"{prefix}{session_id}:") + "*"
    keys = list(client.scan_iter(match=pattern, count=BATCH))
    docs: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + BATCH]:
            pipe.execute_command("JSON.GET", key, "$")
        for raw in pipe.execute():
            if raw is None:
                continue
            value = json.loads(_text(raw))
            docs.append(value[0] if isinstance(value, list) else value)
    return docs
