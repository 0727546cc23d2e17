-- What an advocate records with the texter: screening tools (Lethality Screen, trafficking
-- screen) and one safety plan per conversation. Both are texter content, so the answers and
-- the plan's text are one encrypted JSON blob each (bot.crypto, like notes). Rows go with
-- their conversation: ON DELETE CASCADE for DELETE and retention, and the trigger below for
-- quick exit (purge_conversation keeps the conversation row and sets purged = 1).
CREATE TABLE screens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    user_id         INTEGER,
    data_enc        BLOB NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX screens_conversation ON screens (conversation_id, id);

CREATE TABLE safety_plans (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         INTEGER,
    data_enc        BLOB NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT
);

CREATE TRIGGER advocate_tools_purge AFTER UPDATE OF purged ON conversations
WHEN NEW.purged = 1
BEGIN
    DELETE FROM screens WHERE conversation_id = NEW.id;
    DELETE FROM safety_plans WHERE conversation_id = NEW.id;
END;
