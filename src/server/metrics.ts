import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Store } from "../store/index.js";

/** Prometheus metrics of one server instance (its own registry, so tests can run several). */
export class Metrics {
  readonly registry = new Registry();
  readonly agentsConnected: Gauge;
  readonly opsFinished: Counter;
  readonly httpDuration: Histogram;

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: "lifeline_" });
    this.agentsConnected = new Gauge({ name: "lifeline_agents_connected", help: "Agents with an authenticated session", registers: [this.registry] });
    this.opsFinished = new Counter({ name: "lifeline_ops_finished_total", help: "Ops that reached a final state", labelNames: ["state"], registers: [this.registry] });
    this.httpDuration = new Histogram({
      name: "lifeline_http_request_duration_seconds",
      help: "HTTP request latency",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    new Gauge({
      name: "lifeline_ops",
      help: "Ops in the store by state",
      labelNames: ["state"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [state, n] of Object.entries(await store.countOpsByState())) this.set({ state }, n);
      },
    });
  }
}
