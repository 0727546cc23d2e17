-- Abuse of the SMS line (issue 10). The block list: a number staff blocked gets no replies
-- and joins no queue, while its messages are still stored (bot.abuse, bot.engine). And each
-- number's reply window: how many replies Haven gave it since the window opened, for the
-- per-number reply limit. Neither holds a number or any text; both go with their texter.
CREATE TABLE texter_blocks (
    texter_id  INTEGER PRIMARY KEY REFERENCES texters (id) ON DELETE CASCADE,
    user_id    INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE reply_windows (
    texter_id  INTEGER PRIMARY KEY REFERENCES texters (id) ON DELETE CASCADE,
    started_at TEXT NOT NULL,
    replies    INTEGER NOT NULL
);
