-- Programs that share one Haven (issue 8, part 4). Each has its own number: an inbound
-- text routes by the number it was sent to (Twilio's `To`). A conversation records its
-- program (NULL = the default program, configured from the environment as before), and
-- staff belong to programs through user_programs (none = the default program). `hours`
-- and `lines` NULL mean "as the environment says" (HAVEN_HOURS, HAVEN_NATIONAL_LINES).
CREATE TABLE programs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slug          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    number        TEXT NOT NULL UNIQUE,
    hours         TEXT,
    lines         TEXT,
    name_services INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE user_programs (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    program_id INTEGER NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, program_id)
);

ALTER TABLE conversations ADD COLUMN program_id INTEGER REFERENCES programs (id);
CREATE INDEX conversations_program ON conversations (program_id);
