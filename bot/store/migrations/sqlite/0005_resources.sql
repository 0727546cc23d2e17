-- The local resource directory (Open Referral HSDS, imported by `python -m bot resources
-- import`) and the referrals advocates give from it. Directory rows are public information,
-- not texter data: nothing here is encrypted. One row per service at a location, flattened
-- for search: `needs` is ",shelter,hotline," (so one LIKE finds a need), `schedule` the
-- parsed opening rules as JSON (bot/resources/schedule.py). A re-import replaces every row.
CREATE TABLE resource_sites (
    id           TEXT PRIMARY KEY,
    service_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    organization TEXT NOT NULL DEFAULT '',
    phone        TEXT NOT NULL DEFAULT '',
    address      TEXT NOT NULL DEFAULT '',
    postal_code  TEXT NOT NULL DEFAULT '',
    latitude     REAL,
    longitude    REAL,
    needs        TEXT NOT NULL DEFAULT ',',
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    schedule     TEXT NOT NULL DEFAULT '[]',
    imported_at  TEXT NOT NULL
);
CREATE INDEX resource_sites_place ON resource_sites (latitude, longitude)
    WHERE latitude IS NOT NULL;
CREATE INDEX resource_sites_service ON resource_sites (service_id);

-- A referral given on a conversation. The service's name is copied so the history still
-- reads after a re-import drops the service; rows go with their conversation (ON DELETE
-- CASCADE for DELETE and retention; purge_conversation removes them on quick exit).
CREATE TABLE referrals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    service_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    user_id         INTEGER,
    created_at      TEXT NOT NULL
);
CREATE INDEX referrals_conversation ON referrals (conversation_id, id);
