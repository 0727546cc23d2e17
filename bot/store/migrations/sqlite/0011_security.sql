-- Issue 10's leftovers.
-- 1. A reply given inside the webhook's TwiML gets an opaque reference (random, never a
--    number or text) that its <Message action> callback carries back with the SID Twilio
--    gave it, so erasure can redact it at Twilio like any other message.
ALTER TABLE messages ADD COLUMN reply_ref TEXT;
CREATE UNIQUE INDEX messages_reply_ref ON messages (reply_ref) WHERE reply_ref IS NOT NULL;
-- 2. Login throttling shared by every process on this database: one row per counted
--    attempt under a keyed hash of (address, name), the address or the name (never the
--    address or name themselves), and each key's lock-out.
CREATE TABLE login_attempts (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (key, at);
CREATE INDEX login_attempts_at ON login_attempts (at);
CREATE TABLE login_locks (
    key          TEXT PRIMARY KEY,
    locked_until TEXT NOT NULL,
    locks        INTEGER NOT NULL
);
-- 3. The last TOTP time step accepted for each user: a code is good once.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
