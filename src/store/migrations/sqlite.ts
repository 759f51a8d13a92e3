/**
 * SQLite schema migrations, applied in order on start. Never edit a shipped migration: add one.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('api','enroll')),
    name TEXT NOT NULL,
    role TEXT,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    expires_at INTEGER,
    used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    reason TEXT,
    status_since INTEGER NOT NULL,
    last_seen_at INTEGER,
    enrolled_at INTEGER NOT NULL,
    agent_version TEXT,
    protocol_version INTEGER,
    facts TEXT,
    labels TEXT NOT NULL,
    sign_public_key TEXT NOT NULL,
    seal_public_key TEXT NOT NULL
  );
  CREATE TABLE ops (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    machine_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    sent_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    timeout_ms INTEGER NOT NULL,
    exit_code INTEGER,
    signal TEXT,
    stdout_bytes INTEGER NOT NULL DEFAULT 0,
    stderr_bytes INTEGER NOT NULL DEFAULT 0,
    stdout_truncated INTEGER NOT NULL DEFAULT 0,
    stderr_truncated INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    envelope TEXT NOT NULL
  );
  CREATE INDEX ops_machine_state ON ops (machine_id, state);
  CREATE INDEX ops_run ON ops (run_id);
  CREATE INDEX ops_state ON ops (state);
  CREATE TABLE op_output (
    op_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (op_id, seq)
  );
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT NOT NULL,
    detail TEXT
  );
  `,
  // 2: structured op results (accounts).
  `ALTER TABLE ops ADD COLUMN data TEXT;`,
  // 3: durable jobs (fix-logon) and where each machine lives for its driver.
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    machine_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    state TEXT NOT NULL,
    steps TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    snapshot_name TEXT,
    verify_outcome TEXT,
    error TEXT
  );
  CREATE INDEX jobs_machine_state ON jobs (machine_id, state);
  ALTER TABLE machines ADD COLUMN driver_handle TEXT;
  `,
  // 4: the path a fix-logon job took (online / offline).
  `ALTER TABLE jobs ADD COLUMN path TEXT;`,
  // 5: one-time nonces of sealed requests, kept until they expire (survives restarts).
  `CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);`,
  // 6: AD domains reached through an agent (the bind credential stays with that agent).
  `
  CREATE TABLE domains (
    realm TEXT PRIMARY KEY,
    via_machine_id TEXT NOT NULL,
    bind_user TEXT NOT NULL,
    servers TEXT NOT NULL,
    ca_pem TEXT,
    info TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
  );
  `,
];
