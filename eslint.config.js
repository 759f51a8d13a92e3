// Lint rules, including the layer rules of DESIGN.md: protocol/ imports nothing of ours,
// agent/ and server/ never import each other, only store/ knows the database driver.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const onlyStoreUsesTheDatabase = [
  { name: "node:sqlite", message: "Only src/store/ may use the database driver" },
  { name: "pg", message: "Only src/store/ may use the database driver" },
];

function layer(files, forbidden, { database = false } = {}) {
  return {
    files,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: database ? [] : onlyStoreUsesTheDatabase,
          patterns: forbidden.map((group) => ({ group: [group], message: "Layer rule (docs/architecture.md)" })),
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ["dist/**", "dist-bench/**", "dist-bundle/**", "node_modules/**", ".tools/**", "web/dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { rules: { "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }] } },
  // Route definitions are heterogeneous by design (each has its own schema types); tests poke at raw JSON.
  { files: ["src/server/**", "test/**"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
  layer(["src/**"], []),
  layer(["src/store/**"], ["**/server/**", "**/agent/**", "**/cli/**"], { database: true }),
  layer(["src/protocol/**"], ["../*"]),
  layer(["src/crypto/**"], ["**/server/**", "**/agent/**", "**/cli/**", "**/store/**"]),
  layer(["src/agent/**"], ["**/server/**", "**/store/**", "**/cli/**", "**/drivers/**", "**/lab/**", "**/jobs/**", "**/runbooks/**"]),
  // Drivers reach hypervisors (and the lab); jobs and runbooks are the server's durable work.
  layer(["src/drivers/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**", "**/jobs/**", "**/runbooks/**"]),
  layer(["src/jobs/**", "src/runbooks/**"], ["**/server/**", "**/agent/**", "**/cli/**", "**/lab/**", "**/drivers/**"]),
  layer(["src/server/**"], ["**/agent/**", "**/cli/**"]),
  layer(["src/cli/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/drivers/**", "**/jobs/**", "**/runbooks/**"]),
  // The typed API client is shared with the web console: it may import only protocol/.
  layer(["src/client/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**", "**/crypto/**", "**/lab/**", "**/repair/**", "**/drivers/**", "**/jobs/**", "**/runbooks/**"]),
  // The web console: browser code over the typed API client and protocol/, nothing else of ours.
  layer(["web/src/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**", "**/crypto/**", "**/lab/**", "**/repair/**", "**/drivers/**", "**/jobs/**", "**/runbooks/**", "**/disk/**", "node:*"]),
  layer(["src/lab/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**"]),
  layer(["src/repair/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**"]),
  // `lifeline disk` works on an image on this machine: no server, agent, store, driver or job.
  layer(["src/disk/**"], ["**/server/**", "**/agent/**", "**/store/**", "**/cli/**", "**/drivers/**", "**/jobs/**", "**/runbooks/**"]),
);
