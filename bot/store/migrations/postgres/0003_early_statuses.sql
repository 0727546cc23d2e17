-- A delivery callback can beat the outbox to recording a message's SID: it waits here and
-- is applied when the SID is recorded (nothing Twilio tells us is lost). Retention clears it.
CREATE TABLE early_statuses (
    provider_sid TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    error_code   TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);
