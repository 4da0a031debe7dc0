"""The SQL statements of the plans. ``{s}`` is the quoted schema, ``{cfg}`` the text-search configuration;
``{LIVE}`` / ``{LIVE_SESSION}`` / ``{COLS}`` expand to the fragments below (see :func:`render`)."""

from __future__ import annotations

from typing import Any

from psycopg import sql as pgsql

COLS = "id, namespace, user_id, created_at, updated_at, message_count, size_bytes, metadata, expires_at, last_seq"
LIVE = "(expires_at IS NULL OR expires_at > %(now)s)"

WRITE = (
    "SELECT * FROM {s}.write_messages(%(ns)s, %(sid)s, %(ids)s::text[], %(bodies)s::text[], %(roles)s::text[], "
    "%(created)s::float8[], %(metas)s::text[], %(texts)s::text[], %(now)s::float8, %(expires)s::float8, "
    "%(user)s::text, %(meta)s::json, %(cap)s::bigint, %(replace)s::boolean)"
)

LOCK = "SELECT expires_at FROM {s}.sessions WHERE namespace = %s AND id = %s FOR UPDATE"

GET = f"SELECT {COLS} FROM {{s}}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE}"

SESSION_LIVE = (
    "EXISTS (SELECT 1 FROM {s}.sessions s WHERE s.namespace = %(ns)s AND s.id = %(sid)s "
    "AND (s.expires_at IS NULL OR s.expires_at > %(now)s))"
)

DELETE_SESSION = """
WITH m AS (DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s),
     r AS (DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s),
     e AS (DELETE FROM {s}.entries WHERE namespace = %(ns)s AND session_id = %(sid)s)
DELETE FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s
RETURNING (expires_at IS NULL OR expires_at > %(now)s)
"""

PURGE_LOCK = """
SELECT namespace, id FROM {s}.sessions WHERE expires_at IS NOT NULL AND expires_at <= %(now)s
ORDER BY expires_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED
"""

PURGE = """
WITH dead AS (SELECT * FROM unnest(%(nss)s::text[], %(sids)s::text[]) AS d(namespace, id)),
     m AS (DELETE FROM {s}.messages x USING dead d WHERE x.namespace = d.namespace AND x.session_id = d.id),
     r AS (DELETE FROM {s}.records x USING dead d WHERE x.namespace = d.namespace AND x.session_id = d.id),
     e AS (DELETE FROM {s}.entries x USING dead d WHERE x.namespace = d.namespace AND x.session_id = d.id)
DELETE FROM {s}.sessions x USING dead d WHERE x.namespace = d.namespace AND x.id = d.id
"""

DELETE_MESSAGES = """
WITH del AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND id = ANY(%(ids)s::text[])
        AND {LIVE_SESSION}
    RETURNING octet_length(body) AS b
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(b), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM del)
)
SELECT count(*) FROM del
"""

# Store.rewrite, compare-and-set: the body and what is derived from it (role, metadata, keyword vector) of the
# messages still at the seq that was read; sizes follow, nothing else moves
REWRITE_MESSAGES = """
WITH n AS (
    SELECT * FROM unnest(%(ids)s::text[], %(seqs)s::bigint[], %(bodies)s::text[], %(roles)s::text[],
                         %(metas)s::text[], %(texts)s::text[]) AS n(id, seq, body, role, metadata, text)
), old AS (
    SELECT m.seq, octet_length(m.body) AS b FROM {s}.messages m JOIN n ON m.id = n.id AND m.seq = n.seq
    WHERE m.namespace = %(ns)s AND m.session_id = %(sid)s AND {LIVE_SESSION}
), upd AS (
    UPDATE {s}.messages m SET body = n.body, role = n.role, metadata = n.metadata::jsonb,
                              search = to_tsvector({cfg}, n.text)
    FROM n JOIN old o ON o.seq = n.seq
    WHERE m.namespace = %(ns)s AND m.session_id = %(sid)s AND m.seq = n.seq AND m.id = n.id
    RETURNING octet_length(m.body) AS b, o.b AS was  -- a row deleted meanwhile is not updated: not counted
), sz AS (
    UPDATE {s}.sessions SET size_bytes = size_bytes + (SELECT COALESCE(sum(b - was), 0) FROM upd)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM upd)
)
SELECT count(*) FROM upd
"""


def _rewrite_values(table: str, column: str, kind: str) -> str:
    """Store.rewrite of records or entries: each row set to its new value only while it holds the old one."""
    return f"""
WITH n AS (SELECT * FROM unnest(%(kinds)s::text[], %(keys)s::text[], %(olds)s::{kind}[], %(news)s::{kind}[])
           AS n(kind, key, old, new))
UPDATE {{s}}.{table} t SET {column} = n.new FROM n
WHERE t.namespace = %(ns)s AND t.session_id = %(sid)s AND t.kind = n.kind AND t.key = n.key AND t.{column} = n.old
    AND {{LIVE_SESSION}}
RETURNING 1
"""


REWRITE_RECORDS = _rewrite_values("records", "data", "text")
REWRITE_ENTRIES = _rewrite_values("entries", "value", "bytea")

POP_LOCK = f"SELECT message_count FROM {{s}}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE} FOR UPDATE"

# after POP_LOCK, in the same transaction: a new statement, so its snapshot sees pops committed while it waited
POP = """
WITH target AS (
    SELECT seq FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s
    ORDER BY seq {ORDER} LIMIT %(n)s OFFSET %(off)s
), del AS (
    DELETE FROM {s}.messages m USING target t WHERE m.namespace = %(ns)s AND m.session_id = %(sid)s AND m.seq = t.seq
    RETURNING m.seq, m.body
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(octet_length(body)), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s
)
SELECT seq, body FROM del ORDER BY seq
"""

POP_IDS = """
WITH del AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND id = ANY(%(ids)s::text[])
        AND {LIVE_SESSION}
    RETURNING seq, body
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(octet_length(body)), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM del)
)
SELECT seq, body FROM del ORDER BY seq
"""

CLEAR = """
WITH live AS (
    SELECT message_count FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE}
), m AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND EXISTS (SELECT 1 FROM live)
    RETURNING octet_length(body) AS b
), r AS (
    DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND EXISTS (SELECT 1 FROM live)
), e AS (
    DELETE FROM {s}.entries WHERE namespace = %(ns)s AND session_id = %(sid)s AND EXISTS (SELECT 1 FROM live)
), u AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM m),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(b), 0) FROM m),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM live)
)
SELECT (SELECT count(*) FROM m), EXISTS (SELECT 1 FROM live)
"""

PUT_RECORD = """
WITH live AS (
    SELECT 1 FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE} FOR SHARE
)
INSERT INTO {s}.records (namespace, session_id, kind, key, data)
SELECT %(ns)s, %(sid)s, %(kind)s, %(key)s, %(data)s FROM live
ON CONFLICT (namespace, session_id, kind, key) DO UPDATE SET data = excluded.data
RETURNING 1
"""


# put_entries: one statement. write_messages with no messages creates the session (or starts an expired one afresh)
# and slides its TTL, holding the session row's lock; the entries go in behind it. {CONFLICT} is DO NOTHING for
# if_absent, else DO UPDATE. RETURNING names what this statement wrote.
PUT_ENTRIES = """
WITH s AS MATERIALIZED (
    SELECT 1 FROM {s}.write_messages(%(ns)s, %(sid)s, '{}'::text[], '{}'::text[], '{}'::text[],
        '{}'::float8[], '{}'::text[], '{}'::text[], %(now)s::float8, %(expires)s::float8,
        %(user)s::text, %(meta)s::json, NULL::bigint, false)
)
INSERT INTO {s}.entries AS t (namespace, session_id, kind, key, value)
SELECT %(ns)s, %(sid)s, x.kind, x.key, x.value
FROM unnest(%(kinds)s::text[], %(keys)s::text[], %(values)s::bytea[]) AS x(kind, key, value)
WHERE EXISTS (SELECT 1 FROM s)
ON CONFLICT (namespace, session_id, kind, key) {CONFLICT}
RETURNING t.kind, t.key
"""

# put_entries of ONE entry (an artifact chunk, a state version): scalar parameters. A bytea[] parameter costs
# ~50 ms per MiB to pass (psycopg's array dumping and the server's array input), a bytea parameter ~10 ms.
PUT_ENTRY = PUT_ENTRIES.replace(
    "SELECT %(ns)s, %(sid)s, x.kind, x.key, x.value\n"
    "FROM unnest(%(kinds)s::text[], %(keys)s::text[], %(values)s::bytea[]) AS x(kind, key, value)\n",
    "SELECT %(ns)s, %(sid)s, %(kind)s::text, %(key)s::text, %(value)s::bytea\n",
)
assert PUT_ENTRY != PUT_ENTRIES

# messages and entries in one statement (one commit): the function appends, the insert runs after it in the
# same snapshot chain (data-modifying CTEs always run to completion)
APPEND_ENTRIES = """
WITH s AS MATERIALIZED (
    SELECT * FROM {s}.write_messages(%(ns)s, %(sid)s, %(ids)s::text[], %(bodies)s::text[], %(roles)s::text[],
        %(created)s::float8[], %(metas)s::text[], %(texts)s::text[], %(now)s::float8, %(expires)s::float8,
        %(user)s::text, %(meta)s::json, %(cap)s::bigint, false)
), e AS (
    INSERT INTO {s}.entries AS t (namespace, session_id, kind, key, value)
    SELECT %(ns)s, %(sid)s, x.kind, x.key, x.value
    FROM unnest(%(kinds)s::text[], %(keys)s::text[], %(values)s::bytea[]) AS x(kind, key, value)
    WHERE EXISTS (SELECT 1 FROM s)
    ON CONFLICT (namespace, session_id, kind, key) DO UPDATE SET value = excluded.value
)
SELECT s.seqs FROM s
"""

GET_ENTRIES = f"""
SELECT key, value FROM {{s}}.entries
WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s AND key = ANY(%(keys)s::text[])
    AND {SESSION_LIVE}
"""

# {VALUE} is value, or an empty bytea for keys_only; {RANGE} the key bounds; {ORDER} ASC or DESC
SCAN_ENTRIES = f"""
SELECT key, {{VALUE}} FROM {{s}}.entries
WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s{{RANGE}} AND {SESSION_LIVE}
ORDER BY key {{ORDER}} LIMIT %(limit)s
"""

DELETE_ENTRIES = """
WITH d AS (
    DELETE FROM {s}.entries WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s{KEYS}
        AND {LIVE_SESSION}
    RETURNING 1
) SELECT count(*) FROM d
"""


# update_metadata, one statement: the SET expression reads the row it updates (after waiting for its lock), so two
# concurrent merges both land. {MERGED} is the new metadata (merge or replace, below); the size guard keeps the
# session metadata limit (measured on the stored text). No row back: missing, expired or too large (see the plan).
UPDATE_METADATA = f"""
UPDATE {{s}}.sessions x SET metadata = {{MERGED}}, updated_at = greatest(x.updated_at, %(now)s)
WHERE x.namespace = %(ns)s AND x.id = %(sid)s AND (x.expires_at IS NULL OR x.expires_at > %(now)s)
    AND octet_length(({{MERGED}})::text) <= %(limit)s
RETURNING {COLS}
"""

# the current metadata with the update's top-level keys set: existing keys keep their place and their verbatim
# JSON (json_each on json keeps the text: 1e300 stays 1e300), new keys follow in the update's order
METADATA_MERGE = """(SELECT COALESCE(json_object_agg(u.k, u.v ORDER BY u.pos), '{}'::json) FROM (
    SELECT o.k, COALESCE(n.v, o.v) AS v, o.pos
    FROM json_each(x.metadata) WITH ORDINALITY AS o(k, v, pos) LEFT JOIN json_each(%(md)s::json) AS n(k, v) ON n.k = o.k
    UNION ALL
    SELECT n.k, n.v, 1000000000 + n.pos FROM json_each(%(md)s::json) WITH ORDINALITY AS n(k, v, pos)
    WHERE NOT EXISTS (SELECT 1 FROM json_each(x.metadata) AS o(k, v) WHERE o.k = n.k)
) u)"""
METADATA_REPLACE = "%(md)s::json"


def render(template: str, schema: pgsql.Composable, cfg: pgsql.Composable, conn: Any) -> str:
    """Fill the placeholders of a SQL template. Literal ``%`` of the template are left to psycopg."""
    text = (
        template.replace("{LIVE_SESSION}", SESSION_LIVE)
        .replace("{LIVE}", LIVE)
        .replace("{COLS}", COLS)
    )
    return text.replace("{s}", schema.as_string(conn)).replace("{cfg}", cfg.as_string(conn) + "::regconfig")
