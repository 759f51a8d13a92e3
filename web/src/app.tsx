import { useCallback, useEffect, useState, type FormEvent } from "react";
import type { ApiClient } from "../../src/client/api-client.js";
import type { Account, Machine } from "../../src/protocol/index.js";
import { clientFor, describeError, savedToken, saveToken } from "./session.js";
import { RunPanel } from "./run-panel.js";

// Everything shown comes from agents and users (host names, labels, output): React renders it
// as text, and nothing here ever sets HTML.

export function App() {
  const [token, setToken] = useState<string | null>(savedToken());
  const signOut = useCallback(() => {
    saveToken(null);
    setToken(null);
  }, []);
  if (!token) {
    return (
      <SignIn
        onSignedIn={(t) => {
          saveToken(t);
          setToken(t);
        }}
      />
    );
  }
  return <Console client={clientFor(token)} onSignOut={signOut} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await clientFor(value.trim()).listMachines();
      onSignedIn(value.trim());
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <main className="sign-in">
      <h1>Lifeline</h1>
      <form onSubmit={submit}>
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" disabled={!value.trim()}>
          Sign in
        </button>
      </form>
      {error && <p role="alert">{error}</p>}
      <p className="hint">The server wrote an admin token to ~/.local/share/lifeline/admin-token on its first start; `lifeline token create` makes others.</p>
    </main>
  );
}

function Console({ client, onSignOut }: { client: ApiClient; onSignOut: () => void }) {
  const [machines, setMachines] = useState<Machine[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const { machines: list } = await client.listMachines();
        if (!stopped) {
          setMachines(list);
          setError(null);
        }
      } catch (err) {
        if (!stopped) setError(describeError(err));
      }
    };
    void load();
    const timer = setInterval(() => void load(), 3_000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [client]);

  const machine = machines.find((m) => m.name === selected);
  return (
    <main>
      <header>
        <h1>Lifeline</h1>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      {error && <p role="alert">{error}</p>}
      <table aria-label="machines">
        <thead>
          <tr>
            <th>Machine</th>
            <th>Status</th>
            <th>Host name</th>
            <th>OS</th>
            <th>Agent</th>
            <th>Labels</th>
          </tr>
        </thead>
        <tbody>
          {machines.map((m) => (
            <tr key={m.id} className={m.name === selected ? "selected" : undefined}>
              <td>
                <button className="link" onClick={() => setSelected(m.name)}>
                  {m.name}
                </button>
              </td>
              <td className={m.status === "Ready" ? "ready" : "not-ready"}>{m.status === "Ready" ? "Ready" : `NotReady (${m.reason ?? "unknown"})`}</td>
              <td>{m.facts?.hostname ?? ""}</td>
              <td>{m.facts?.osPretty || m.facts?.os || ""}</td>
              <td>{m.agentVersion ?? ""}</td>
              <td>{Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(" ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {machines.length === 0 && !error && <p>No machines yet: enroll an agent with a token from `lifeline token create --enroll`.</p>}
      {machine && <MachineDetail key={machine.name} client={client} machine={machine} />}
    </main>
  );
}

function MachineDetail({ client, machine }: { client: ApiClient; machine: Machine }) {
  const [accounts, setAccounts] = useState<Account[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loadAccounts = async () => {
    setError(null);
    try {
      setAccounts((await client.listAccounts(machine.name)).accounts);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <section aria-label={`machine ${machine.name}`}>
      <h2>{machine.name}</h2>
      <p>
        {machine.facts ? `${machine.facts.hostname} · ${machine.facts.addresses.join(", ")} · ${machine.facts.kernel}` : "no facts reported yet"}
      </p>
      <h3>Accounts</h3>
      <button onClick={() => void loadAccounts()} disabled={machine.status !== "Ready"}>
        List accounts
      </button>
      {error && <p role="alert">{error}</p>}
      {accounts && (
        <table aria-label="accounts">
          <thead>
            <tr>
              <th>User</th>
              <th>State</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {accounts
              .filter((a) => !a.system)
              .map((a) => (
                <tr key={a.name}>
                  <td>{a.name}</td>
                  <td className={a.state === "ok" ? "ready" : "not-ready"}>{a.state}</td>
                  <td>{a.evidence.join("; ")}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      <h3>Run command</h3>
      <RunPanel client={client} machine={machine.name} disabled={machine.status !== "Ready"} />
    </section>
  );
}
