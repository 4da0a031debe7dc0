"""The schema: versioned migrations of the core tables and the ``write_messages`` function.

``{s}`` stands for the quoted schema name, ``{cfg}`` for the quoted text-search configuration. Migrations run in one
transaction under an advisory lock (:meth:`PostgresStore.migrate`); change a released step only through a new one.
"""

from __future__ import annotations

# "{s}" stands for the quoted schema name, "{cfg}" for the quoted text-search configuration.

# Every write (append, replace, ensure) is one call of this function: one round trip. It locks the session row first
# (creating it, or replacing it when expired), so the known-id check and the seqs see every committed write; then
# inserts, trims to the cap, and updates the counters. Versions differ only in the known-id loop; change it only
# through a new migration.
_WRITE_FUNCTION = """
    CREATE OR REPLACE FUNCTION {s}.write_messages(
        p_ns text, p_sid text, p_ids text[], p_bodies text[], p_roles text[], p_created float8[], p_metas text[],
        p_texts text[], p_now float8, p_expires float8, p_user text, p_meta jsonb, p_cap bigint, p_replace boolean
    ) RETURNS TABLE (id text, namespace text, user_id text, created_at float8, updated_at float8, message_count bigint,
                     size_bytes bigint, metadata jsonb, expires_at float8, last_seq bigint, seqs bigint[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
        s {s}.sessions%ROWTYPE;
        v_seqs bigint[] := '{}';
        v_seq bigint;
        v_known bigint;
        v_added bigint := 0;
        v_bytes bigint := 0;
        v_gone bigint;
        v_gone_bytes bigint;
    BEGIN
        SELECT * INTO s FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid FOR UPDATE;
        IF FOUND AND s.expires_at IS NOT NULL AND s.expires_at <= p_now THEN
            DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid;
            DELETE FROM {s}.records r WHERE r.namespace = p_ns AND r.session_id = p_sid;
            DELETE FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid;
            s := NULL;
        END IF;
        IF s.id IS NULL THEN
            INSERT INTO {s}.sessions AS x (namespace, id, user_id, created_at, updated_at, expires_at, metadata)
            VALUES (p_ns, p_sid, p_user, p_now, p_now, p_expires, p_meta)
            ON CONFLICT ON CONSTRAINT sessions_pkey DO NOTHING;
            SELECT * INTO s FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid FOR UPDATE;
        ELSIF p_replace THEN
            DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid;
            s.message_count := 0;
            s.size_bytes := 0;
        END IF;
        v_seq := s.last_seq;
{known_id_loop}
        s.message_count := s.message_count + v_added;
        s.size_bytes := s.size_bytes + v_bytes;
        IF p_cap IS NOT NULL AND s.message_count > p_cap THEN
            WITH doomed AS (
                DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.seq IN (
                    SELECT d.seq FROM {s}.messages d WHERE d.namespace = p_ns AND d.session_id = p_sid
                    ORDER BY d.seq LIMIT s.message_count - p_cap)
                RETURNING octet_length(m.body) AS b
            ) SELECT count(*), COALESCE(sum(b), 0) INTO v_gone, v_gone_bytes FROM doomed;
            s.message_count := s.message_count - v_gone;
            s.size_bytes := s.size_bytes - v_gone_bytes;
        END IF;
        UPDATE {s}.sessions x SET last_seq = v_seq, message_count = s.message_count, size_bytes = s.size_bytes,
            updated_at = greatest(x.updated_at, p_now), expires_at = p_expires
        WHERE x.namespace = p_ns AND x.id = p_sid
        RETURNING x.* INTO s;
        RETURN QUERY SELECT s.id, s.namespace, s.user_id, s.created_at, s.updated_at, s.message_count, s.size_bytes,
            s.metadata, s.expires_at, s.last_seq, v_seqs;
    END
    $fn$;
    """

# v2: look the id up, then insert.
_KNOWN_ID_LOOP_V2 = """        FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
            SELECT m.seq INTO v_known FROM {s}.messages m
            WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.id = p_ids[i];
            IF FOUND THEN
                v_seqs := v_seqs || v_known;
                CONTINUE;
            END IF;
            v_seq := v_seq + 1;
            INSERT INTO {s}.messages (namespace, session_id, seq, id, body, user_id, role, created_at, metadata, search)
            VALUES (p_ns, p_sid, v_seq, p_ids[i], p_bodies[i], s.user_id, p_roles[i], p_created[i], p_metas[i]::jsonb,
                    to_tsvector({cfg}, p_texts[i]));
            v_added := v_added + 1;
            v_bytes := v_bytes + octet_length(p_bodies[i]);
            v_seqs := v_seqs || v_seq;
        END LOOP;"""

# v3: the known-id check moves into the INSERT (ON CONFLICT on the unique id index). A PL/pgSQL function caches its
# plans per connection; the v2 SELECT planned while the table was empty kept walking the session's primary key until
# the next ANALYZE, so on a fresh, fast-growing database every append read the whole session.
_KNOWN_ID_LOOP_V3 = """        FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
            INSERT INTO {s}.messages (namespace, session_id, seq, id, body, user_id, role, created_at, metadata, search)
            VALUES (p_ns, p_sid, v_seq + 1, p_ids[i], p_bodies[i], s.user_id, p_roles[i], p_created[i],
                    p_metas[i]::jsonb, to_tsvector({cfg}, p_texts[i]))
            ON CONFLICT ON CONSTRAINT messages_namespace_session_id_id_key DO NOTHING;
            IF FOUND THEN
                v_seq := v_seq + 1;
                v_added := v_added + 1;
                v_bytes := v_bytes + octet_length(p_bodies[i]);
                v_seqs := v_seqs || v_seq;
            ELSE  -- a known id (a retry or a replay): report the seq it already has
                SELECT m.seq INTO v_known FROM {s}.messages m
                WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.id = p_ids[i];
                v_seqs := v_seqs || v_known;
            END IF;
        END LOOP;"""

_WIPE_RECORDS = "            DELETE FROM {s}.records r WHERE r.namespace = p_ns AND r.session_id = p_sid;"
assert _WIPE_RECORDS in _WRITE_FUNCTION

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE {s}.sessions (
        namespace     text COLLATE "C" NOT NULL,
        id            text COLLATE "C" NOT NULL,
        user_id       text COLLATE "C",
        created_at    double precision NOT NULL,
        updated_at    double precision NOT NULL,
        expires_at    double precision,
        message_count bigint NOT NULL DEFAULT 0,
        size_bytes    bigint NOT NULL DEFAULT 0,
        last_seq      bigint NOT NULL DEFAULT 0,
        metadata      jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (namespace, id)
    );
    CREATE INDEX sessions_by_updated ON {s}.sessions (namespace, updated_at DESC, id DESC);
    CREATE INDEX sessions_by_user ON {s}.sessions (namespace, user_id, updated_at DESC, id DESC)
        WHERE user_id IS NOT NULL;
    CREATE INDEX sessions_by_expiry ON {s}.sessions (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE {s}.messages (
        namespace  text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        seq        bigint NOT NULL,
        id         text COLLATE "C" NOT NULL,
        body       text NOT NULL,
        user_id    text COLLATE "C",
        role       text NOT NULL,
        created_at double precision NOT NULL,
        metadata   jsonb,
        search     tsvector,
        PRIMARY KEY (namespace, session_id, seq),
        UNIQUE (namespace, session_id, id)
    );
    CREATE INDEX messages_by_time ON {s}.messages (namespace, created_at DESC);
    CREATE INDEX messages_by_user ON {s}.messages (namespace, user_id, created_at DESC) WHERE user_id IS NOT NULL;
    CREATE INDEX messages_search ON {s}.messages USING gin (search);

    CREATE TABLE {s}.records (
        namespace  text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        kind       text COLLATE "C" NOT NULL,
        key        text COLLATE "C" NOT NULL,
        data       text NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    );
    """,
    _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V2),  # v2
    _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V3),  # v3
    # v4: session metadata is kept verbatim as json (jsonb rewrote numbers: 1e300 came back as an int, -0.0 as 0);
    # listing filters cast it to jsonb, so their equality is still jsonb's (objects in any key order, true is not 1)
    """
    DROP FUNCTION {s}.write_messages(text, text, text[], text[], text[], float8[], text[], text[], float8, float8,
                                     text, jsonb, bigint, boolean);
    ALTER TABLE {s}.sessions ALTER COLUMN metadata DROP DEFAULT;
    ALTER TABLE {s}.sessions ALTER COLUMN metadata TYPE json USING metadata::json;
    ALTER TABLE {s}.sessions ALTER COLUMN metadata SET DEFAULT '{}';
    """
    + _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V3)
    .replace("p_meta jsonb", "p_meta json")
    .replace("metadata jsonb, expires_at", "metadata json, expires_at"),
    # v5: entries, a session's ordered binary key-value space (checkpoints, documents, state, artifact chunks); a
    # write over an expired session clears them with the rest of it
    """
    CREATE TABLE {s}.entries (
        namespace  text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        kind       text COLLATE "C" NOT NULL,
        key        text COLLATE "C" NOT NULL,
        value      bytea NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    );
    """
    + _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V3)
    .replace("p_meta jsonb", "p_meta json")
    .replace("metadata jsonb, expires_at", "metadata json, expires_at")
    .replace(_WIPE_RECORDS, _WIPE_RECORDS + "\n" + _WIPE_RECORDS.replace("records r", "entries r")),
]


__all__ = ["MIGRATIONS"]
