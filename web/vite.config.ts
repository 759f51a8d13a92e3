import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The console is static files the server serves at /; it talks only to the same origin's /v1 API.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  logLevel: "warn",
});
