import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { cryptSalt, sha512Crypt } from "../../src/repair/sha512-crypt.js";

// Checked against an independent implementation: OpenSSL's `passwd -6` (password on stdin).
describe("SHA-512 crypt", () => {
  const openssl = (password: string, salt: string) =>
    execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: `${password}\n`, encoding: "utf8" }).trim();

  it.each([
    ["hello world", "abcdefgh"],
    ["x", "s"],
    ["Fresh-Passw0rd-1", cryptSalt("op-1")],
    ["ünïcødé pässwörd with spaces and 64+ characters.............................", "0123456789abcdef"],
  ])("matches openssl for %j", (password, salt) => {
    expect(sha512Crypt(Buffer.from(password), salt)).toBe(openssl(password, salt));
  });

  it("supports rounds= and the specification's test vector", () => {
    expect(sha512Crypt(Buffer.from("Hello world!"), "saltstring")).toBe(
      "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    );
    expect(sha512Crypt(Buffer.from("Hello world!"), "saltstringsaltst", 10000)).toBe(
      "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    );
  });

  it("makes deterministic salts from a seed and random ones without", () => {
    expect(cryptSalt("x")).toBe(cryptSalt("x"));
    expect(cryptSalt()).not.toBe(cryptSalt());
    expect(cryptSalt()).toMatch(/^[./0-9A-Za-z]{16}$/);
  });
});
