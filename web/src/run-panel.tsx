import { useState, type FormEvent } from "react";
import type { ApiClient } from "../../src/client/api-client.js";
import type { Op } from "../../src/protocol/index.js";
import { describeError } from "./session.js";

interface Line {
  stream: "stdout" | "stderr";
  text: string;
}

const decoder = () => new TextDecoder("utf-8");

/** A script run on one machine, its output streamed as it comes (the run's NDJSON events). */
export function RunPanel({ client, machine, disabled }: { client: ApiClient; machine: string; disabled: boolean }) {
  const [script, setScript] = useState("");
  const [lines, setLines] = useState<Line[]>([]);
  const [op, setOp] = useState<Op | null>(null);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = async (event: FormEvent) => {
    event.preventDefault();
    setLines([]);
    setOp(null);
    setError(null);
    setRunning(true);
    const decoders = { stdout: decoder(), stderr: decoder() };
    try {
      const created = await client.createRun({ targets: { machines: [machine] }, script });
      if (created.skipped.length) throw new Error(`skipped: ${created.skipped.map((s) => s.reason).join("; ")}`);
      for await (const e of client.runEvents(created.id)) {
        if (e.type === "output") {
          const bytes = Uint8Array.from(atob(e.data), (c) => c.charCodeAt(0));
          const text = decoders[e.stream].decode(bytes, { stream: true });
          setLines((all) => [...all, { stream: e.stream, text }]);
        } else if (e.type === "state") setOp(e.op);
      }
    } catch (err) {
      setError(describeError(err));
    } finally {
      setRunning(false);
    }
  };

  return (
    <form onSubmit={run} className="run">
      <label htmlFor={`script-${machine}`}>Script (sh)</label>
      <textarea id={`script-${machine}`} rows={4} value={script} onChange={(e) => setScript(e.target.value)} />
      <button type="submit" disabled={disabled || running || !script.trim()}>
        {running ? "Running…" : "Run"}
      </button>
      {error && <p role="alert">{error}</p>}
      <pre aria-label="output">
        {lines.map((l, i) => (
          <span key={i} className={l.stream}>
            {l.text}
          </span>
        ))}
      </pre>
      {op && ["succeeded", "failed", "timed-out", "canceled", "expired"].includes(op.state) && (
        <p aria-label="result">
          {op.state}
          {op.exitCode !== null ? `, exit code ${op.exitCode}` : ""}
          {op.stdoutTruncated || op.stderrTruncated ? ", output truncated at the cap" : ""}
        </p>
      )}
    </form>
  );
}
