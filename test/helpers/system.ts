import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { createLogger, type Logger } from "../../src/core/logging.js";
import { Subjects } from "../../src/core/subjects.js";
import { Host } from "../../src/host/host.js";
import { HostClient } from "../../src/host/client.js";
import type { AgentTypeDefinition } from "../../src/worker/agent.js";
import { Worker, type WorkerOptions } from "../../src/worker/worker.js";
import { TestNatsServer } from "./nats-server.js";

export const subjects = new Subjects("sb");

export function testLogger(): Logger {
  return createLogger("test", { level: process.env["TEST_LOG_LEVEL"] ?? "silent", pretty: false });
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A real server plus in-process hosts and workers, everything closed by `close()`. Tests that need
 * separate processes use the CLI helper instead.
 */
export class TestSystem {
  readonly closers: (() => Promise<unknown>)[] = [];
  readonly logger = testLogger();

  private constructor(
    /** Client URL(s), comma-separated. */
    readonly url: string,
    private readonly stopServers: () => Promise<void>,
  ) {}

  static async start(): Promise<TestSystem> {
    const server = await TestNatsServer.start();
    return new TestSystem(server.url, () => server.stop());
  }

  /** A system on servers the caller started and stops. */
  static on(url: string): TestSystem {
    return new TestSystem(url, async () => undefined);
  }

  async connect(name = "test"): Promise<NatsConnection> {
    const nc = await connect({ servers: this.url.split(","), name, maxReconnectAttempts: -1, reconnectTimeWait: 100, pingInterval: 1_000, maxPingOut: 2 });
    this.closers.push(() => nc.close());
    return nc;
  }

  async startHost(options: { workerTtlMs?: number; heartbeatIntervalMs?: number; replicas?: number } = {}): Promise<Host> {
    const nc = await this.connect("host");
    const host = new Host({
      nc,
      subjects,
      logger: this.logger,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 200,
      workerTtlMs: options.workerTtlMs ?? 1_500,
      infrastructure: { replicas: options.replicas ?? 1 },
    });
    await host.start();
    this.closers.push(() => host.close());
    return host;
  }

  async startWorker(agents: readonly AgentTypeDefinition[] | readonly string[], options: Partial<WorkerOptions> = {}): Promise<Worker> {
    const nc = await this.connect("worker");
    const defs = typeof agents[0] === "string" ? builtinAgents(agents as readonly string[]) : (agents as readonly AgentTypeDefinition[]);
    const worker = new Worker({ nc, subjects, logger: this.logger, agents: defs, drainTimeoutMs: 5_000, ...options });
    await worker.start();
    this.closers.push(() => worker.close());
    return worker;
  }

  async hostClient(): Promise<HostClient> {
    return new HostClient(await this.connect("admin"), subjects);
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    await this.stopServers();
  }
}

/**
 * Gives each test of the calling `describe` a fresh server with a host, closed after the test:
 * `let sys: TestSystem; withHostedSystem((s) => (sys = s));`.
 */
export function withHostedSystem(set: (sys: TestSystem) => void): void {
  let current: TestSystem | undefined;
  beforeEach(async () => {
    current = await TestSystem.start();
    set(current);
    await current.startHost();
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
}
