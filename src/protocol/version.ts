/**
 * The agent protocol version. The server decides what an agent can do from this number.
 *
 * Changelog:
 * - 1 (2026-11-25): enrollment, challenge auth, heartbeats, signed `run` ops and cancels.
 */
export const PROTOCOL_VERSION = 1;
/** Agents older than this are refused with `version-mismatch`. */
export const MIN_AGENT_PROTOCOL_VERSION = 1;
export const LIFELINE_VERSION = "0.1.0";
