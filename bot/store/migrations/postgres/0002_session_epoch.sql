-- Signing out bumps the user's epoch; a session cookie from an older epoch is refused, so a
-- copied cookie dies with the sign-out (cookies are encrypted, but kept by the browser).
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
