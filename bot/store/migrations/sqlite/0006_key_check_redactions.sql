-- Which secret key the data is under: a keyed hash of a constant (bot.crypto.key_check), so
-- start-up refuses a key that cannot read the data instead of serving errors, and `rekey`
-- records the new key when it has moved everything. One row.
CREATE TABLE key_check (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Message SIDs whose bodies Twilio still keeps, recorded before Haven erases its own copy
-- (quick exit, DELETE, retention): the outbox worker asks Twilio to redact each one.
CREATE TABLE redactions (
    provider_sid    TEXT PRIMARY KEY,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    created_at      TEXT NOT NULL
);
CREATE INDEX redactions_due ON redactions (status, next_attempt_at);
