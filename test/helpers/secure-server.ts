import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { AuthStore } from "../../src/cli/auth-store.js";
import { loadConfig, type ConfigFlags, type SwitchboardConfig } from "../../src/core/config.js";
import { ChatSession, type ChatSessionOptions } from "../../src/cli/chat-session.js";
import { connectNats, type NatsConnection } from "../../src/core/connection.js";
import { Role } from "../../src/core/roles.js";
import { Host, type HostOptions } from "../../src/host/host.js";
import { Worker, type WorkerOptions } from "../../src/worker/worker.js";
import { TestNatsServer } from "./nats-server.js";
import { subjects, testLogger } from "./system.js";

export const NATS_CONF = fileURLToPath(new URL("../../nats.conf", import.meta.url));

/** Replaces one line of the shipped configuration, failing loudly when it is not there. */
function replaceLine(conf: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(conf)) throw new Error(`nats.conf no longer has a line matching ${pattern}; update test/helpers/secure-server.ts`);
  return conf.replace(pattern, replacement);
}

/**
 * The shipped nats.conf with only what a test must change: no fixed ports (the launcher's listen
 * and monitoring lines come first), the store, pid file and generated users in the test's
 * directory. Authentication, permissions and limits are exactly as shipped.
 */
export async function shippedConfig(dir: string, authDir: string, extra = ""): Promise<string> {
  let conf = await readFile(NATS_CONF, "utf8");
  conf = replaceLine(conf, /^port: \d+$/m, "");
  conf = replaceLine(conf, /^http: \S+$/m, "");
  conf = replaceLine(conf, /^pid_file: .*$/m, `pid_file: "${join(dir, "nats-server.pid")}"`);
  conf = replaceLine(conf, /^(\s*)store_dir: .*$/m, `$1store_dir: "${join(dir, "js")}"`);
  // nats-server 2.9 resolves an include against the including file's directory, even an absolute one.
  conf = replaceLine(conf, /^include "data\/auth\/accounts.conf"$/m, `include "${join(relative(dir, authDir), "accounts.conf")}"`);
  return `${conf}\n${extra}\n`;
}

export interface SecureServerOptions {
  readonly users?: readonly string[];
  /** Configuration appended to the shipped one (a tls block, say). */
  readonly extra?: string;
  readonly tlsCa?: string;
  /** Replaces the generated accounts file before the server starts (an older version's, say). */
  readonly accountsFile?: (store: AuthStore) => string;
}

/** A real nats-server running the shipped nats.conf with freshly generated credentials. */
export class SecureTestServer {
  private readonly opened: NatsConnection[] = [];
  private readonly services: { close(): Promise<void> }[] = [];

  private constructor(
    readonly server: TestNatsServer,
    readonly store: AuthStore,
  ) {}

  static async start(options: SecureServerOptions = {}): Promise<SecureTestServer> {
    const dir = await mkdtemp(join(tmpdir(), "sb-secure-"));
    const store = new AuthStore(join(dir, "auth"));
    store.init("sb");
    for (const user of options.users ?? ["alice", "bob"]) store.addUser(user);
    if (options.accountsFile) await writeFile(store.accountsFile, options.accountsFile(store), { mode: 0o600 });
    await mkdir(join(dir, "js"), { recursive: true });
    const conf = await shippedConfig(dir, store.dir, options.extra ?? "");
    const server = await TestNatsServer.start({ dir, config: () => conf, requiresAuth: true, ...(options.tlsCa ? { tlsCa: options.tlsCa } : {}) });
    return new SecureTestServer(server, store);
  }

  get url(): string {
    return this.server.url;
  }

  /** Whether the nats-server process is still alive. */
  get running(): boolean {
    return this.server.running;
  }

  get pidFile(): string {
    return join(this.server.dir, "nats-server.pid");
  }

  /** Configuration as a command would load it against this server. */
  config(flags: ConfigFlags = {}): SwitchboardConfig {
    return loadConfig({ natsUrl: this.url, authDir: this.store.dir, ...flags }, {});
  }

  /** A connection with a role's own credentials (the caller closes it). */
  connectAs(role: Role, user?: string, flags: ConfigFlags = {}): Promise<NatsConnection> {
    return connectNats(this.config(flags), { name: `test-${role}${user ? `-${user}` : ""}`, role, ...(user ? { user } : {}) });
  }

  /** A connection with a role's own credentials, closed by `stop()`. */
  async open(role: Role, user?: string): Promise<NatsConnection> {
    const nc = await this.connectAs(role, user);
    this.opened.push(nc);
    return nc;
  }

  /** A started chat session of `user` on its own credentials (the caller closes the session). */
  async chatAs(user: string, options: Partial<Omit<ChatSessionOptions, "nc" | "user">> = {}): Promise<ChatSession> {
    const chat = new ChatSession({ nc: await this.open(Role.Client, user), subjects, user, logger: testLogger(), replyTimeoutMs: 8_000, ...options });
    await chat.start();
    return chat;
  }

  /**
   * A started host with the host role's credentials, closed by `stop()`. Pass `nc` to share the
   * host's connection with the test, as when it reads streams exactly as the host can.
   */
  async startHost(options: Partial<Omit<HostOptions, "subjects">> = {}): Promise<Host> {
    const host = new Host({ subjects, logger: testLogger(), heartbeatIntervalMs: 300, workerTtlMs: 3_000, ...options, nc: options.nc ?? (await this.open(Role.Host)) });
    this.services.push(host);
    await host.start();
    return host;
  }

  /** A started worker with the worker role's credentials, closed by `stop()`. */
  async startWorker(agents: WorkerOptions["agents"], options: Partial<Omit<WorkerOptions, "nc" | "subjects" | "agents">> = {}): Promise<Worker> {
    const worker = new Worker({ nc: await this.open(Role.Worker), subjects, logger: testLogger(), agents, drainTimeoutMs: 3_000, ...options });
    this.services.push(worker);
    await worker.start();
    return worker;
  }

  /** Environment for CLI processes against this server. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return { NATS_URL: this.url, SB_AUTH_DIR: this.store.dir, SB_CREDS: "", ...extra };
  }

  /** Closes workers and hosts (the last started first), the connections, then the server. */
  async stop(): Promise<void> {
    try {
      for (const service of this.services.splice(0).reverse()) await service.close();
    } finally {
      for (const nc of this.opened.splice(0)) await nc.close().catch(() => undefined);
      await this.server.stop();
      await rm(this.server.dir, { recursive: true, force: true });
    }
  }
}
