-- Read model: the admin's list of users. Owned by the `admin_users` projection.
CREATE TABLE admin_users
(
    user_id         uuid PRIMARY KEY,
    email           text        NOT NULL,
    roles           text[]      NOT NULL DEFAULT '{}',
    verified        boolean     NOT NULL DEFAULT false,
    disabled        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    last_sign_in_at timestamptz,
    sign_in_count   bigint      NOT NULL DEFAULT 0,
    track_count     integer     NOT NULL DEFAULT 0
);
CREATE INDEX admin_users_created_at ON admin_users (created_at DESC, user_id);
CREATE INDEX admin_users_email ON admin_users (email text_pattern_ops);
INSERT INTO projection_checkpoints (projection) VALUES ('admin_users');
