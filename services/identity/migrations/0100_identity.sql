-- identity's own tables (versions 100+; the event tables are 1-99).

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,          -- lowercased: emails are unique case-insensitively
    name             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,          -- Argon2id PHC string
    role             TEXT NOT NULL,          -- customer | admin
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email_normalized)
);

-- Refresh tokens rotate: each use replaces the token with a new one of the same family; a token
-- presented after it was used means it leaked, and the whole family is revoked.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,        -- SHA-256 of the token; the token itself is never stored
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Failed logins per key (`account:<email>` or `address:<ip>`) within a window.
CREATE TABLE login_attempts (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);

-- Ed25519 signing keys; the newest signs, all are published in the JWKS.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_key  TEXT NOT NULL,              -- PKCS#8, base64
    public_key   TEXT NOT NULL,              -- raw 32 bytes, base64url (the JWK "x")
    created_at   BIGINT NOT NULL
);

-- What users did, kept from events (registered, bookings confirmed, playback started).
CREATE TABLE activity (
    id          TEXT PRIMARY KEY,            -- the event id
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,               -- JSON
    occurred_at BIGINT NOT NULL
);
CREATE INDEX activity_user ON activity (user_id, occurred_at);
