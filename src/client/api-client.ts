import type { z, ZodType } from "zod";
import {
  AuditList,
  CreateTokenResponse,
  ErrorBody,
  LifelineError,
  Machine,
  MachineList,
  Op,
  OpList,
  Run,
  RunEvent,
  TokenInfo,
  TokenList,
  isErrorCode,
  AccountResult,
  Domain,
  DomainList,
  type AddDomainRequest,
  AccountsListResult,
  ServerInfo,
  RepairSession,
  RepairRunResult,
  RepairRestoreResult,
  type RepairRunRequest,
  Snapshot,
  SnapshotList,
  VerifyResult,
  Job,
  JobList,
  type DriverHandle,
  type FixLogonRequest,
  type ResetPasswordRequest,
  type VerifyRequest,
  type CreateRunRequest,
  type CreateTokenRequest,
  type SetLabelsRequest,
} from "../protocol/index.js";

/**
 * The typed HTTP client of the Lifeline API, shared by the CLI and the web console. Every
 * response is parsed with the same schema the server used.
 */
/** Whose accounts: a machine's local ones (its name) or a domain's ({ realm }). */
export type AccountScope = string | { realm: string };

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly token: string | undefined,
  ) {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    if (!this.token) throw new LifelineError("UNAUTHENTICATED", "No API token: pass --token, set LIFELINE_TOKEN, or run on the server host");
    let response: Response;
    try {
      response = await fetch(new URL(path, this.server), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as Error).cause as { code?: string } | undefined;
      throw new LifelineError("SERVER_UNREACHABLE", `Cannot reach the Lifeline server at ${this.server} (${cause?.code ?? (err as Error).message})`);
    }
    if (!response.ok) {
      const json: unknown = await response.json().catch(() => undefined);
      const error = ErrorBody.safeParse(json);
      if (error.success && isErrorCode(error.data.code)) throw new LifelineError(error.data.code, error.data.message);
      throw new LifelineError("INTERNAL", `The server answered HTTP ${response.status}`);
    }
    return response;
  }

  private async json<S extends ZodType>(schema: S, method: string, path: string, body?: unknown): Promise<z.infer<S>> {
    const response = await this.call(method, path, body);
    return schema.parse(await response.json());
  }

  createToken(request: CreateTokenRequest) {
    return this.json(CreateTokenResponse, "POST", "/v1/tokens", request);
  }
  listTokens() {
    return this.json(TokenList, "GET", "/v1/tokens");
  }
  revokeToken(id: string) {
    return this.json(TokenInfo, "POST", `/v1/tokens/${encodeURIComponent(id)}/revoke`);
  }
  listMachines() {
    return this.json(MachineList, "GET", "/v1/machines");
  }
  getMachine(name: string) {
    return this.json(Machine, "GET", `/v1/machines/${encodeURIComponent(name)}`);
  }
  setLabels(name: string, request: SetLabelsRequest) {
    return this.json(Machine, "PATCH", `/v1/machines/${encodeURIComponent(name)}/labels`, request);
  }
  async deleteMachine(name: string): Promise<void> {
    await this.call("DELETE", `/v1/machines/${encodeURIComponent(name)}`);
  }
  createRun(request: CreateRunRequest) {
    return this.json(Run, "POST", "/v1/runs", request);
  }
  listOps(query: { machine?: string; state?: string; run?: string; limit?: number }) {
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
    return this.json(OpList, "GET", `/v1/ops?${params}`);
  }
  getOp(id: string) {
    return this.json(Op, "GET", `/v1/ops/${encodeURIComponent(id)}`);
  }
  cancelOp(id: string) {
    return this.json(Op, "POST", `/v1/ops/${encodeURIComponent(id)}/cancel`);
  }
  serverInfo() {
    return this.json(ServerInfo, "GET", "/v1/server-info");
  }
  private accountPath(scope: AccountScope, user?: string, action?: string) {
    const base = typeof scope === "string" ? `/v1/machines/${encodeURIComponent(scope)}` : `/v1/domains/${encodeURIComponent(scope.realm)}`;
    return `${base}/accounts${user ? `/${encodeURIComponent(user)}` : ""}${action ? `/${action}` : ""}`;
  }
  listAccounts(scope: AccountScope) {
    return this.json(AccountsListResult, "GET", this.accountPath(scope));
  }
  getAccount(scope: AccountScope, user: string) {
    return this.json(AccountResult, "GET", this.accountPath(scope, user));
  }
  expireAccount(scope: AccountScope, user: string, allowSystem = false) {
    return this.json(AccountResult, "POST", this.accountPath(scope, user, "expire"), { allowSystem });
  }
  clearFlag(scope: AccountScope, user: string, allowSystem = false) {
    return this.json(AccountResult, "POST", this.accountPath(scope, user, "clear-flag"), { allowSystem });
  }
  unlockAccount(scope: AccountScope, user: string, allowSystem = false) {
    return this.json(AccountResult, "POST", this.accountPath(scope, user, "unlock"), { allowSystem });
  }
  resetPassword(scope: AccountScope, user: string, request: ResetPasswordRequest) {
    return this.json(AccountResult, "POST", this.accountPath(scope, user, "reset-password"), request);
  }
  addDomain(request: AddDomainRequest) {
    return this.json(Domain, "POST", "/v1/domains", request);
  }
  listDomains() {
    return this.json(DomainList, "GET", "/v1/domains");
  }
  getDomain(realm: string) {
    return this.json(Domain, "GET", `/v1/domains/${encodeURIComponent(realm)}`);
  }
  async removeDomain(realm: string): Promise<void> {
    await this.call("DELETE", `/v1/domains/${encodeURIComponent(realm)}`);
  }
  verifyLogin(machine: string, user: string, request: VerifyRequest) {
    return this.json(VerifyResult, "POST", this.accountPath(machine, user, "verify"), request);
  }
  setDriver(machine: string, handle: DriverHandle | null) {
    return this.json(Machine, "PATCH", `/v1/machines/${encodeURIComponent(machine)}/driver`, { handle });
  }
  listSnapshots(machine: string) {
    return this.json(SnapshotList, "GET", `/v1/machines/${encodeURIComponent(machine)}/snapshots`);
  }
  createSnapshot(machine: string, snapshot: string) {
    return this.json(Snapshot, "POST", `/v1/machines/${encodeURIComponent(machine)}/snapshots`, { snapshot });
  }
  revertSnapshot(machine: string, snapshot: string) {
    return this.json(Snapshot, "POST", `/v1/machines/${encodeURIComponent(machine)}/snapshots/${encodeURIComponent(snapshot)}/revert`);
  }
  async deleteSnapshot(machine: string, snapshot: string): Promise<void> {
    await this.call("DELETE", `/v1/machines/${encodeURIComponent(machine)}/snapshots/${encodeURIComponent(snapshot)}`);
  }
  fixLogon(machine: string, request: FixLogonRequest) {
    return this.json(Job, "POST", `/v1/machines/${encodeURIComponent(machine)}/fix-logon`, request);
  }
  listJobs(query: { machine?: string; limit?: number }) {
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
    return this.json(JobList, "GET", `/v1/jobs?${params}`);
  }
  getJob(id: string) {
    return this.json(Job, "GET", `/v1/jobs/${encodeURIComponent(id)}`);
  }
  resumeJob(id: string) {
    return this.json(Job, "POST", `/v1/jobs/${encodeURIComponent(id)}/resume`);
  }
  rollbackJob(id: string) {
    return this.json(Job, "POST", `/v1/jobs/${encodeURIComponent(id)}/rollback`);
  }
  repairCreate(machine: string, snapshot: boolean) {
    return this.json(RepairSession, "POST", `/v1/machines/${encodeURIComponent(machine)}/repair`, { snapshot });
  }
  repairRun(machine: string, request: RepairRunRequest) {
    return this.json(RepairRunResult, "POST", `/v1/machines/${encodeURIComponent(machine)}/repair/run`, request);
  }
  repairRestore(machine: string) {
    return this.json(RepairRestoreResult, "POST", `/v1/machines/${encodeURIComponent(machine)}/repair/restore`);
  }
  listAudit(limit: number) {
    return this.json(AuditList, "GET", `/v1/audit?limit=${limit}`);
  }

  /** Follows a run's NDJSON event stream until the server ends it. */
  async *runEvents(runId: string, opId?: string): AsyncGenerator<RunEvent> {
    const response = await this.call("GET", `/v1/runs/${encodeURIComponent(runId)}/events${opId ? `?op=${encodeURIComponent(opId)}` : ""}`);
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line) yield RunEvent.parse(JSON.parse(line));
      }
    }
  }
}
