-- Haven schema, SQLite. Timestamps are fixed-width ISO-8601 UTC text, so they compare as
-- text. Booleans are INTEGER 0/1 in both dialects so one set of queries serves both.
-- Columns ending in _enc hold AES-GCM ciphertext (bot.crypto); conversations.private_enc is
-- one encrypted JSON object with what the texter told us (need, answers, signals, location,
-- flow scratch). Audit rows have no foreign keys: they outlive what they describe. User ids
-- (advocate_id, transfer_to, user_id) have none either, so users can never block a purge.

CREATE TABLE texters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_hash    TEXT NOT NULL UNIQUE,
    phone_enc     BLOB NOT NULL,
    language      TEXT NOT NULL DEFAULT 'en',
    safe_to_text  INTEGER,
    unsafe_hours_enc BLOB,
    opted_out     INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    texter_id       INTEGER NOT NULL REFERENCES texters (id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    language        TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    labels          TEXT NOT NULL DEFAULT '[]',
    private_enc     BLOB,
    purged          INTEGER NOT NULL DEFAULT 0,
    team            TEXT,
    advocate_id     INTEGER,
    transfer_to     INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT,
    last_inbound_at TEXT,
    queued_at       TEXT,
    claimed_at      TEXT,
    closed_at       TEXT,
    disposition     TEXT,
    nudge_at        TEXT,
    expire_at       TEXT
);
CREATE INDEX conversations_texter ON conversations (texter_id, id);
CREATE INDEX conversations_state ON conversations (state);
CREATE INDEX conversations_advocate ON conversations (advocate_id);
CREATE INDEX conversations_nudge ON conversations (nudge_at) WHERE nudge_at IS NOT NULL;
CREATE INDEX conversations_expire ON conversations (expire_at) WHERE expire_at IS NOT NULL;

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    author          TEXT NOT NULL,
    body_enc        BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    provider_sid    TEXT,
    status          TEXT NOT NULL,
    error_code      TEXT,
    media_types     TEXT NOT NULL DEFAULT '[]',
    labels          TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_sid ON messages (provider_sid) WHERE provider_sid IS NOT NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    to_enc          BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE replies (
    message_sid TEXT PRIMARY KEY,
    body_enc    BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX replies_created ON replies (created_at);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    teams         TEXT NOT NULL DEFAULT '[]',
    presence      TEXT NOT NULL DEFAULT 'offline',
    capacity      INTEGER NOT NULL DEFAULT 3,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);

CREATE TABLE notes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    body_enc        BLOB NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX notes_conversation ON notes (conversation_id, id);

CREATE TABLE audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER,
    action          TEXT NOT NULL,
    conversation_id INTEGER,
    detail          TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL
);
CREATE INDEX audit_conversation ON audit (conversation_id, id);
