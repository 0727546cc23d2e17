-- An optional second factor for dashboard sign-in (issue 10): the user's TOTP secret,
-- encrypted at rest like message bodies (bot.crypto), NULL when none is enrolled.
ALTER TABLE users ADD COLUMN totp_secret_enc BLOB;
