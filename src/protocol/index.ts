export * from "./version.js";
export * from "./errors.js";
export * from "./common.js";
export * from "./tokens.js";
export * from "./machines.js";
export * from "./ops.js";
export * from "./enroll.js";
export * from "./agent-messages.js";
