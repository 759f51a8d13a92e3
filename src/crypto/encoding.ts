export const toB64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");
export const fromB64 = (text: string): Buffer => Buffer.from(text, "base64url");
