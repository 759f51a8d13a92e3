export * from "./encoding.js";
export * from "./keys.js";
export * from "./sign.js";
export * from "./secrets.js";
export * from "./seal.js";
