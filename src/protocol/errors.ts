/**
 * The one registry of error codes. Every code has an HTTP status and a CLI exit code; the API
 * returns `{code, message}`, the CLI prints `lifeline: <message> (<code>)` and exits with the
 * code's exit status. Callers branch on `code`, never on message text. docs/errors.md documents
 * every code (a test checks it).
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { http: 400, exit: 2 },
  USAGE: { http: 400, exit: 2 },
  PAYLOAD_TOO_LARGE: { http: 413, exit: 2 },
  SCRIPT_TOO_LARGE: { http: 413, exit: 2 },
  UNAUTHENTICATED: { http: 401, exit: 3 },
  FORBIDDEN: { http: 403, exit: 3 },
  ENROLL_TOKEN_UNKNOWN: { http: 401, exit: 3 },
  ENROLL_TOKEN_EXPIRED: { http: 401, exit: 3 },
  ENROLL_TOKEN_USED: { http: 401, exit: 3 },
  ENROLL_TOKEN_REVOKED: { http: 401, exit: 3 },
  ENROLL_PROOF_INVALID: { http: 401, exit: 3 },
  AGENT_AUTH_FAILED: { http: 401, exit: 3 },
  ROUTE_NOT_FOUND: { http: 404, exit: 4 },
  MACHINE_NOT_FOUND: { http: 404, exit: 4 },
  OP_NOT_FOUND: { http: 404, exit: 4 },
  RUN_NOT_FOUND: { http: 404, exit: 4 },
  TOKEN_NOT_FOUND: { http: 404, exit: 4 },
  NO_TARGETS: { http: 404, exit: 4 },
  ACCOUNT_NOT_FOUND: { http: 404, exit: 4 },
  ACCOUNT_IS_SYSTEM: { http: 403, exit: 3 },
  PASSWORD_POLICY: { http: 400, exit: 2 },
  SECRET_BINDING_INVALID: { http: 400, exit: 5 },
  ACCOUNT_CHANGE_FAILED: { http: 500, exit: 5 },
  OP_TIMED_OUT: { http: 504, exit: 5 },
  JOB_NOT_FOUND: { http: 404, exit: 4 },
  SHADOW_INVALID: { http: 422, exit: 5 },
  JOB_CONFLICT: { http: 409, exit: 5 },
  NO_DRIVER: { http: 409, exit: 5 },
  LOGIN_NOT_VERIFIED: { http: 500, exit: 1 },
  MACHINE_NAME_TAKEN: { http: 409, exit: 5 },
  AGENT_NOT_READY: { http: 409, exit: 5 },
  OP_ALREADY_FINISHED: { http: 409, exit: 5 },
  PROTOCOL_VERSION_UNSUPPORTED: { http: 426, exit: 5 },
  OP_SIGNATURE_INVALID: { http: 400, exit: 5 },
  OP_EXPIRED: { http: 400, exit: 5 },
  OP_WRONG_MACHINE: { http: 400, exit: 5 },
  OP_REPLAYED: { http: 409, exit: 5 },
  AGENT_RESTARTED: { http: 500, exit: 5 },
  AGENT_LOST: { http: 504, exit: 5 },
  AGENT_STATE_INVALID: { http: 500, exit: 5 },
  SERVER_UNREACHABLE: { http: 503, exit: 6 },
  CONFIG_INVALID: { http: 500, exit: 2 },
  STORE_UNAVAILABLE: { http: 503, exit: 6 },
  LAB_FAILED: { http: 500, exit: 7 },
  DRIVER_HANDLE_INVALID: { http: 400, exit: 2 },
  SNAPSHOT_NOT_FOUND: { http: 404, exit: 4 },
  SNAPSHOT_EXISTS: { http: 409, exit: 5 },
  MACHINE_RUNNING: { http: 409, exit: 5 },
  DISK_ATTACHED: { http: 409, exit: 5 },
  SNAPSHOT_CHECKSUM_MISMATCH: { http: 500, exit: 5 },
  DRIVER_FAILED: { http: 500, exit: 5 },
  DISK_INVALID: { http: 422, exit: 5 },
  DISK_MOUNT_UNSAFE: { http: 500, exit: 5 },
  DISK_NOT_AN_IMAGE: { http: 422, exit: 2 },
  DISK_IN_USE: { http: 409, exit: 5 },
  DISK_READ_ONLY: { http: 409, exit: 5 },
  DISK_ENCRYPTED: { http: 422, exit: 5 },
  DISK_NO_OS: { http: 422, exit: 5 },
  DISK_BACKUP_UNAVAILABLE: { http: 409, exit: 5 },
  DISK_VERIFY_FAILED: { http: 500, exit: 5 },
  DOMAIN_NOT_FOUND: { http: 404, exit: 4 },
  DOMAIN_UNREACHABLE: { http: 502, exit: 6 },
  DOMAIN_REALM_MISMATCH: { http: 400, exit: 2 },
  DOMAIN_BIND_REJECTED: { http: 400, exit: 3 },
  DOMAIN_INSUFFICIENT_RIGHTS: { http: 403, exit: 3 },
  INTERNAL: { http: 500, exit: 1 },
} as const satisfies Record<string, { http: number; exit: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

export class LifelineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LifelineError";
    this.code = code;
  }
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
}

/**
 * A LifelineError that also says why more finely than its code (e.g. a disk refused as
 * "encrypted-volume" under DISK_ENCRYPTED): callers branch on `code`, tests and logs read `reason`.
 */
export class ReasonedError<R extends string> extends LifelineError {
  readonly reason: R;
  constructor(reason: R, codes: Record<R, ErrorCode>, message: string, options?: { cause?: unknown }) {
    super(codes[reason], message, options);
    this.reason = reason;
  }
}
