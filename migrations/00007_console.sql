-- +goose Up
-- The web console's sign-in: a password per user (argon2id, PHC string), browser sessions and
-- one-time links an admin issues to set a password. Secrets are never stored: a session cookie
-- and a link token are kept as their SHA-256, like API tokens.

-- user_passwords is apart from users so that no `SELECT * FROM users` ever carries a hash.
CREATE TABLE user_passwords (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash    text        NOT NULL CHECK (hash LIKE '$argon2id$%'),
    set_at  timestamptz NOT NULL DEFAULT now()
);

-- sessions: one signed-in browser. A session ends at idle_expires_at unless used (each use moves
-- it on), at expires_at whatever happens (absolute lifetime), or when revoked (sign-out, an
-- admin, a password change).
CREATE TABLE sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash            bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    user_agent      text        NOT NULL DEFAULT '',
    source_ip       text        NOT NULL DEFAULT '',
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- password_links: an admin-issued one-time link to set a user's password.
CREATE TABLE password_links (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash       bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > created_at)
);

-- +goose Down
DROP TABLE password_links;
DROP TABLE sessions;
DROP TABLE user_passwords;
