import type { AuditEntry, DomainInfo, JobState, NotReadyReason, OpState } from "../protocol/index.js";
import type { AuditInput, DomainRecord, EnrollConsumeResult, JobPatch, JobRecord, MachineRecord, OpPatch, OpRecord, OutputChunk, Store, TokenRecord } from "./store.js";

/** A value a query takes or a row holds: both databases map to these. */
export type SqlValue = string | number | bigint | null | Uint8Array;
export type Row = Record<string, unknown>;

/** One way of running SQL, written with `?` placeholders in the subset both databases share. */
export interface SqlQuerier {
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Returns how many rows the statement changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/**
 * A database connection for SqlStore: SQLite (sqlite.ts) or PostgreSQL (postgres.ts). Only
 * what differs between them lives behind this: placeholders, transactions and locking.
 */
export interface SqlConnection extends SqlQuerier {
  /**
   * Runs `fn` in one transaction. With a lock key, transactions of the same key never overlap,
   * even across server replicas (PostgreSQL: an advisory lock; SQLite: one writer anyway).
   */
  transaction<T>(lockKey: string | null, fn: (q: SqlQuerier) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const RUNNING_GRACE_MS = 60_000;
const ACTIVE_JOB_STATES = ["running", "rolling-back"] as const;

/**
 * The Store over SQL, one implementation for both databases: the queries keep to SQL that
 * SQLite and PostgreSQL both accept (ON CONFLICT, RETURNING, no MAX(a,b)), so the two stores
 * cannot drift apart. Atomic steps are single statements or transactions with a lock key.
 */
export class SqlStore implements Store {
  constructor(protected readonly db: SqlConnection) {}

  private async get(sql: string, ...params: SqlValue[]): Promise<Row | undefined> {
    return (await this.db.all(sql, params))[0];
  }
  private all(sql: string, ...params: SqlValue[]): Promise<Row[]> {
    return this.db.all(sql, params);
  }
  private run(sql: string, ...params: SqlValue[]): Promise<number> {
    return this.db.run(sql, params);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // Tokens
  async insertToken(t: TokenRecord): Promise<void> {
    await this.run(
      "INSERT INTO tokens (id, kind, name, role, hash, created_at, created_by, expires_at, used_at, revoked_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
      t.id, t.kind, t.name, t.role, t.hash, t.createdAt, t.createdBy, t.expiresAt, t.usedAt, t.revokedAt,
    );
  }
  async findApiTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    const row = await this.get("SELECT * FROM tokens WHERE hash = ? AND kind = 'api'", hash);
    return row && tokenFromRow(row);
  }
  async listTokens(): Promise<TokenRecord[]> {
    return (await this.all("SELECT * FROM tokens ORDER BY created_at, id")).map(tokenFromRow);
  }
  async getToken(id: string): Promise<TokenRecord | undefined> {
    const row = await this.get("SELECT * FROM tokens WHERE id = ?", id);
    return row && tokenFromRow(row);
  }
  async revokeToken(id: string, at: number): Promise<boolean> {
    return (await this.run("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", at, id)) === 1;
  }
  async consumeEnrollToken(hash: string, now: number): Promise<EnrollConsumeResult> {
    // One statement: two servers racing for the same token cannot both win.
    const used = await this.get(
      `UPDATE tokens SET used_at = ? WHERE hash = ? AND kind = 'enroll' AND revoked_at IS NULL AND used_at IS NULL
         AND (expires_at IS NULL OR expires_at > ?) RETURNING *`,
      now, hash, now,
    );
    if (used) return { ok: true, token: tokenFromRow(used) };
    const row = await this.get("SELECT * FROM tokens WHERE hash = ? AND kind = 'enroll'", hash);
    if (!row) return { ok: false, why: "unknown" };
    const token = tokenFromRow(row);
    return { ok: false, why: token.revokedAt !== null ? "revoked" : token.usedAt !== null ? "used" : "expired" };
  }
  async countTokens(kind: "api" | "enroll"): Promise<number> {
    return Number((await this.get("SELECT COUNT(*) AS n FROM tokens WHERE kind = ?", kind))!.n);
  }

  // Machines
  async insertMachine(m: MachineRecord): Promise<void> {
    await this.run(
      `INSERT INTO machines (id, name, status, reason, status_since, last_seen_at, enrolled_at, agent_version, protocol_version, facts, labels, sign_public_key, seal_public_key, driver_handle)
       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      m.id, m.name, m.status, m.reason, m.statusSince, m.lastSeenAt, m.enrolledAt, m.agentVersion, m.protocolVersion,
      m.facts ? JSON.stringify(m.facts) : null, JSON.stringify(m.labels), m.signPublicKey, m.sealPublicKey, m.driver ? JSON.stringify(m.driver) : null,
    );
  }
  async getMachineByName(name: string): Promise<MachineRecord | undefined> {
    const row = await this.get("SELECT * FROM machines WHERE name = ?", name);
    return row && machineFromRow(row);
  }
  async getMachineById(id: string): Promise<MachineRecord | undefined> {
    const row = await this.get("SELECT * FROM machines WHERE id = ?", id);
    return row && machineFromRow(row);
  }
  async listMachines(): Promise<MachineRecord[]> {
    return (await this.all("SELECT * FROM machines ORDER BY name")).map(machineFromRow);
  }
  async updateMachine(id: string, patch: Partial<Omit<MachineRecord, "id" | "name" | "enrolledAt">>): Promise<void> {
    const columns: Record<string, SqlValue> = {};
    if (patch.status !== undefined) columns.status = patch.status;
    if (patch.reason !== undefined) columns.reason = patch.reason;
    if (patch.statusSince !== undefined) columns.status_since = patch.statusSince;
    if (patch.lastSeenAt !== undefined) columns.last_seen_at = patch.lastSeenAt;
    if (patch.agentVersion !== undefined) columns.agent_version = patch.agentVersion;
    if (patch.protocolVersion !== undefined) columns.protocol_version = patch.protocolVersion;
    if (patch.facts !== undefined) columns.facts = patch.facts ? JSON.stringify(patch.facts) : null;
    if (patch.labels !== undefined) columns.labels = JSON.stringify(patch.labels);
    if (patch.signPublicKey !== undefined) columns.sign_public_key = patch.signPublicKey;
    if (patch.sealPublicKey !== undefined) columns.seal_public_key = patch.sealPublicKey;
    if (patch.driver !== undefined) columns.driver_handle = patch.driver ? JSON.stringify(patch.driver) : null;
    await this.updateRow("machines", id, columns);
  }
  async markAllNotReady(reason: NotReadyReason, at: number): Promise<void> {
    await this.run("UPDATE machines SET status = 'NotReady', reason = ?, status_since = ? WHERE status = 'Ready'", reason, at);
  }
  async deleteMachine(id: string): Promise<boolean> {
    return (await this.run("DELETE FROM machines WHERE id = ?", id)) === 1;
  }

  // Ops
  async insertOp(op: OpRecord): Promise<void> {
    await this.run(
      `INSERT INTO ops (id, run_id, machine_id, machine_name, kind, state, created_at, created_by, expires_at, sent_at, started_at, finished_at,
        cancel_requested, timeout_ms, exit_code, signal, stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, error, envelope)
       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      op.id, op.runId, op.machineId, op.machineName, op.kind, op.state, op.createdAt, op.createdBy, op.expiresAt, op.sentAt, op.startedAt,
      op.finishedAt, op.cancelRequested ? 1 : 0, op.timeoutMs, op.exitCode, op.signal, op.stdoutBytes, op.stderrBytes,
      op.stdoutTruncated ? 1 : 0, op.stderrTruncated ? 1 : 0, op.error ? JSON.stringify(op.error) : null, JSON.stringify(op.envelope),
    );
  }
  async getOp(id: string): Promise<OpRecord | undefined> {
    const row = await this.get("SELECT * FROM ops WHERE id = ?", id);
    return row && opFromRow(row);
  }
  async listOps(filter: { machineId?: string; state?: OpState; runId?: string; limit: number }): Promise<OpRecord[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (clause: string, value: string) => {
      where.push(clause);
      params.push(value);
    };
    if (filter.machineId) add("machine_id = ?", filter.machineId);
    if (filter.state) add("state = ?", filter.state);
    if (filter.runId) add("run_id = ?", filter.runId);
    const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
    return (await this.all(`SELECT * FROM ops ${clause} ORDER BY created_at DESC, id LIMIT ?`, ...params, filter.limit)).map(opFromRow);
  }
  async transitionOp(id: string, from: readonly OpState[], patch: OpPatch): Promise<boolean> {
    const columns = opColumns(patch);
    const names = Object.keys(columns);
    if (names.length === 0) return false;
    const sql = `UPDATE ops SET ${names.map((n) => `${n} = ?`).join(", ")} WHERE id = ? AND state IN (${from.map(() => "?").join(",")})`;
    return (await this.run(sql, ...Object.values(columns), id, ...from)) === 1;
  }
  async updateOp(id: string, patch: OpPatch): Promise<void> {
    await this.updateRow("ops", id, opColumns(patch));
  }
  async pendingOps(machineId: string): Promise<OpRecord[]> {
    return (await this.all("SELECT * FROM ops WHERE machine_id = ? AND state IN ('queued','sent','running') ORDER BY created_at, id", machineId)).map(opFromRow);
  }
  async overdueOps(now: number): Promise<OpRecord[]> {
    // A queued op can never start after its expiry. A sent or running one may have started just
    // before it, so it gets the later of its expiry and its start + timeout, plus a grace period,
    // before it is declared lost (written as two comparisons: SQLite has no GREATEST).
    return (
      await this.all(
        `SELECT * FROM ops WHERE (state = 'queued' AND expires_at < ?)
           OR (state IN ('sent','running') AND expires_at + ? < ? AND COALESCE(started_at, 0) + timeout_ms + ? < ?)`,
        now, RUNNING_GRACE_MS, now, RUNNING_GRACE_MS, now,
      )
    ).map(opFromRow);
  }
  async countOpsByState(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const row of await this.all("SELECT state, COUNT(*) AS n FROM ops GROUP BY state")) out[String(row.state)] = Number(row.n);
    return out;
  }

  async appendOutput(opId: string, chunk: OutputChunk): Promise<boolean> {
    return (await this.run("INSERT INTO op_output (op_id, seq, stream, data) VALUES (?,?,?,?) ON CONFLICT DO NOTHING", opId, chunk.seq, chunk.stream, chunk.data)) === 1;
  }
  async readOutput(opId: string): Promise<OutputChunk[]> {
    return (await this.all("SELECT seq, stream, data FROM op_output WHERE op_id = ? ORDER BY seq", opId)).map((r) => ({
      seq: Number(r.seq),
      stream: r.stream as OutputChunk["stream"],
      data: Buffer.from(r.data as Uint8Array),
    }));
  }

  async insertJobUnlessActive(job: JobRecord): Promise<{ inserted: true } | { inserted: false; activeJobId: string }> {
    // Locked per machine: two servers starting a job on one machine at once queue here.
    return this.db.transaction(`job:${job.machineId}`, async (q) => {
      const active = (await q.all(`SELECT id FROM jobs WHERE machine_id = ? AND state IN (${ACTIVE_JOB_STATES.map(() => "?").join(",")}) LIMIT 1`, [job.machineId, ...ACTIVE_JOB_STATES]))[0];
      if (active) return { inserted: false, activeJobId: String(active.id) } as const;
      await q.run(
        `INSERT INTO jobs (id, kind, machine_id, machine_name, user_name, state, steps, params, created_at, created_by, updated_at, snapshot_name, verify_outcome, error, path)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
        [
          job.id, job.kind, job.machineId, job.machineName, job.user, job.state, JSON.stringify(job.steps), JSON.stringify(job.params), job.createdAt,
          job.createdBy, job.updatedAt, job.snapshotName, job.verifyOutcome, job.error ? JSON.stringify(job.error) : null, job.path,
        ],
      );
      return { inserted: true } as const;
    });
  }
  async getJob(id: string): Promise<JobRecord | undefined> {
    const row = await this.get("SELECT * FROM jobs WHERE id = ?", id);
    return row && jobFromRow(row);
  }
  async listJobs(filter: { machineId?: string; limit: number }): Promise<JobRecord[]> {
    const rows = filter.machineId
      ? await this.all("SELECT * FROM jobs WHERE machine_id = ? ORDER BY created_at DESC, id LIMIT ?", filter.machineId, filter.limit)
      : await this.all("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ?", filter.limit);
    return rows.map(jobFromRow);
  }
  async updateJob(id: string, patch: JobPatch): Promise<void> {
    const c: Record<string, SqlValue> = { updated_at: patch.updatedAt };
    if (patch.state !== undefined) c.state = patch.state;
    if (patch.steps !== undefined) c.steps = JSON.stringify(patch.steps);
    if (patch.snapshotName !== undefined) c.snapshot_name = patch.snapshotName;
    if (patch.verifyOutcome !== undefined) c.verify_outcome = patch.verifyOutcome;
    if (patch.path !== undefined) c.path = patch.path;
    if (patch.params !== undefined) c.params = JSON.stringify(patch.params);
    if (patch.error !== undefined) c.error = patch.error ? JSON.stringify(patch.error) : null;
    await this.updateRow("jobs", id, c);
  }
  async jobsInStates(states: readonly JobState[]): Promise<JobRecord[]> {
    return (await this.all(`SELECT * FROM jobs WHERE state IN (${states.map(() => "?").join(",")}) ORDER BY created_at, id`, ...states)).map(jobFromRow);
  }

  async useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean> {
    await this.run("DELETE FROM used_nonces WHERE expires_at < ?", now);
    // The primary key decides between two servers seeing the same nonce at once.
    return (await this.run("INSERT INTO used_nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING", nonce, expiresAt)) === 1;
  }

  async putDomain(d: DomainRecord): Promise<void> {
    await this.run(
      `INSERT INTO domains (realm, via_machine_id, bind_user, servers, ca_pem, info, created_at, created_by) VALUES (?,?,?,?,?,?,?,?)
       ON CONFLICT (realm) DO UPDATE SET via_machine_id = excluded.via_machine_id, bind_user = excluded.bind_user, servers = excluded.servers,
         ca_pem = excluded.ca_pem, info = excluded.info, created_at = excluded.created_at, created_by = excluded.created_by`,
      d.realm, d.viaMachineId, d.bindUser, JSON.stringify(d.servers), d.caPem, JSON.stringify(d.info), d.createdAt, d.createdBy,
    );
  }
  async getDomain(realm: string): Promise<DomainRecord | undefined> {
    const row = await this.get("SELECT * FROM domains WHERE realm = ?", realm);
    return row ? domainFromRow(row) : undefined;
  }
  async listDomains(): Promise<DomainRecord[]> {
    return (await this.all("SELECT * FROM domains ORDER BY realm")).map(domainFromRow);
  }
  async deleteDomain(realm: string): Promise<boolean> {
    return (await this.run("DELETE FROM domains WHERE realm = ?", realm)) === 1;
  }

  async appendAudit(e: AuditInput): Promise<void> {
    await this.run("INSERT INTO audit (at, actor, action, target, result, detail) VALUES (?,?,?,?,?,?)", e.at, e.actor, e.action, e.target, e.result, e.detail);
  }
  async listAudit(limit: number): Promise<AuditEntry[]> {
    return (await this.all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", limit)).map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      actor: String(r.actor),
      action: String(r.action),
      target: nullableString(r.target),
      result: String(r.result),
      detail: nullableString(r.detail),
    }));
  }

  private async updateRow(table: "machines" | "ops" | "jobs", id: string, columns: Record<string, SqlValue>): Promise<void> {
    const names = Object.keys(columns);
    if (names.length === 0) return;
    await this.run(`UPDATE ${table} SET ${names.map((n) => `${n} = ?`).join(", ")} WHERE id = ?`, ...Object.values(columns), id);
  }
}

function opColumns(p: OpPatch): Record<string, SqlValue> {
  const c: Record<string, SqlValue> = {};
  if (p.state !== undefined) c.state = p.state;
  if (p.sentAt !== undefined) c.sent_at = p.sentAt;
  if (p.startedAt !== undefined) c.started_at = p.startedAt;
  if (p.finishedAt !== undefined) c.finished_at = p.finishedAt;
  if (p.cancelRequested !== undefined) c.cancel_requested = p.cancelRequested ? 1 : 0;
  if (p.exitCode !== undefined) c.exit_code = p.exitCode;
  if (p.signal !== undefined) c.signal = p.signal;
  if (p.stdoutBytes !== undefined) c.stdout_bytes = p.stdoutBytes;
  if (p.stderrBytes !== undefined) c.stderr_bytes = p.stderrBytes;
  if (p.stdoutTruncated !== undefined) c.stdout_truncated = p.stdoutTruncated ? 1 : 0;
  if (p.stderrTruncated !== undefined) c.stderr_truncated = p.stderrTruncated ? 1 : 0;
  if (p.error !== undefined) c.error = p.error ? JSON.stringify(p.error) : null;
  if (p.data !== undefined) c.data = JSON.stringify(p.data);
  return c;
}

const nullableString = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function tokenFromRow(r: Row): TokenRecord {
  return {
    id: String(r.id),
    kind: r.kind as TokenRecord["kind"],
    name: String(r.name),
    role: (r.role ?? null) as TokenRecord["role"],
    hash: String(r.hash),
    createdAt: Number(r.created_at),
    createdBy: nullableString(r.created_by),
    expiresAt: nullableNumber(r.expires_at),
    usedAt: nullableNumber(r.used_at),
    revokedAt: nullableNumber(r.revoked_at),
  };
}

function machineFromRow(r: Row): MachineRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    status: r.status as MachineRecord["status"],
    reason: (r.reason ?? null) as MachineRecord["reason"],
    statusSince: Number(r.status_since),
    lastSeenAt: nullableNumber(r.last_seen_at),
    enrolledAt: Number(r.enrolled_at),
    agentVersion: nullableString(r.agent_version),
    protocolVersion: nullableNumber(r.protocol_version),
    facts: r.facts ? JSON.parse(String(r.facts)) : null,
    labels: JSON.parse(String(r.labels)),
    signPublicKey: String(r.sign_public_key),
    sealPublicKey: String(r.seal_public_key),
    driver: r.driver_handle ? JSON.parse(String(r.driver_handle)) : null,
  };
}

function jobFromRow(r: Row): JobRecord {
  return {
    id: String(r.id),
    kind: "fix-logon",
    machineId: String(r.machine_id),
    machineName: String(r.machine_name),
    user: String(r.user_name),
    state: r.state as JobRecord["state"],
    steps: JSON.parse(String(r.steps)),
    params: JSON.parse(String(r.params)),
    createdAt: Number(r.created_at),
    createdBy: String(r.created_by),
    updatedAt: Number(r.updated_at),
    snapshotName: nullableString(r.snapshot_name),
    path: (nullableString(r.path) ?? null) as JobRecord["path"],
    verifyOutcome: (nullableString(r.verify_outcome) ?? null) as JobRecord["verifyOutcome"],
    error: r.error ? JSON.parse(String(r.error)) : null,
  };
}

function opFromRow(r: Row): OpRecord {
  return {
    id: String(r.id),
    runId: String(r.run_id),
    machineId: String(r.machine_id),
    machineName: String(r.machine_name),
    kind: String(r.kind),
    state: r.state as OpState,
    createdAt: Number(r.created_at),
    createdBy: String(r.created_by),
    expiresAt: Number(r.expires_at),
    sentAt: nullableNumber(r.sent_at),
    startedAt: nullableNumber(r.started_at),
    finishedAt: nullableNumber(r.finished_at),
    cancelRequested: Number(r.cancel_requested) === 1,
    timeoutMs: Number(r.timeout_ms),
    exitCode: nullableNumber(r.exit_code),
    signal: nullableString(r.signal),
    stdoutBytes: Number(r.stdout_bytes),
    stderrBytes: Number(r.stderr_bytes),
    stdoutTruncated: Number(r.stdout_truncated) === 1,
    stderrTruncated: Number(r.stderr_truncated) === 1,
    error: r.error ? JSON.parse(String(r.error)) : null,
    ...(r.data ? { data: JSON.parse(String(r.data)) } : {}),
    envelope: JSON.parse(String(r.envelope)),
  };
}

function domainFromRow(r: Row): DomainRecord {
  return {
    realm: String(r.realm),
    viaMachineId: String(r.via_machine_id),
    bindUser: String(r.bind_user),
    servers: JSON.parse(String(r.servers)) as string[],
    caPem: r.ca_pem === null ? null : String(r.ca_pem),
    info: JSON.parse(String(r.info)) as DomainInfo,
    createdAt: Number(r.created_at),
    createdBy: String(r.created_by),
  };
}
