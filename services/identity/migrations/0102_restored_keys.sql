-- Keys a restore brought from a backup are published, so the tokens they signed keep verifying
-- until they expire, but never sign here: only keys this deployment made and published do.
ALTER TABLE signing_keys ADD COLUMN signs INTEGER NOT NULL DEFAULT 1;
