/**
 * PostgreSQL schema migrations, applied in order on start (under an advisory lock, so replicas
 * starting together migrate once). Never edit a shipped migration: add one. Version 1 is the
 * SQLite schema's versions 1-6 at once; times are milliseconds since the epoch (BIGINT).
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('api','enroll')),
    name TEXT NOT NULL,
    role TEXT,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    expires_at BIGINT,
    used_at BIGINT,
    revoked_at BIGINT
  );
  CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    reason TEXT,
    status_since BIGINT NOT NULL,
    last_seen_at BIGINT,
    enrolled_at BIGINT NOT NULL,
    agent_version TEXT,
    protocol_version INTEGER,
    facts TEXT,
    labels TEXT NOT NULL,
    sign_public_key TEXT NOT NULL,
    seal_public_key TEXT NOT NULL,
    driver_handle TEXT
  );
  CREATE TABLE ops (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    machine_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    sent_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    timeout_ms BIGINT NOT NULL,
    exit_code INTEGER,
    signal TEXT,
    stdout_bytes BIGINT NOT NULL DEFAULT 0,
    stderr_bytes BIGINT NOT NULL DEFAULT 0,
    stdout_truncated INTEGER NOT NULL DEFAULT 0,
    stderr_truncated INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    envelope TEXT NOT NULL,
    data TEXT
  );
  CREATE INDEX ops_machine_state ON ops (machine_id, state);
  CREATE INDEX ops_run ON ops (run_id);
  CREATE INDEX ops_state ON ops (state);
  CREATE TABLE op_output (
    op_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (op_id, seq)
  );
  CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT
  );
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    machine_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    state TEXT NOT NULL,
    steps TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    snapshot_name TEXT,
    verify_outcome TEXT,
    error TEXT,
    path TEXT
  );
  CREATE INDEX jobs_machine_state ON jobs (machine_id, state);
  CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
  CREATE TABLE domains (
    realm TEXT PRIMARY KEY,
    via_machine_id TEXT NOT NULL,
    bind_user TEXT NOT NULL,
    servers TEXT NOT NULL,
    ca_pem TEXT,
    info TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
  );
  `,
];
