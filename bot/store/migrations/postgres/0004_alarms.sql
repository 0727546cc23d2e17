-- Alarms (an unclaimed priority-1 texter, danger while an advocate holds them) are recorded
-- here so each fires once across any number of processes. One row per conversation and kind:
-- raising an uncleared alarm again changes nothing; a cleared one can be raised anew.
-- `detail` is for staff and never holds anything the texter wrote.
CREATE TABLE alarms (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    raised_at       TIMESTAMPTZ NOT NULL,
    cleared_at      TIMESTAMPTZ,
    detail          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (conversation_id, kind)
);
CREATE INDEX alarms_active ON alarms (raised_at) WHERE cleared_at IS NULL;
