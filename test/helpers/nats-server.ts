import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { findNatsServer } from "../../src/cli/nats-server-binary.js";

let binary: string | undefined;

/** The nats-server `switchboard up` would start (SB_NATS_SERVER, a safe system one, or the one setup fetched). */
export function natsServerBinary(): string {
  binary ??= findNatsServer()?.path;
  if (binary) return binary;
  throw new Error("nats-server is not installed; run `npm run setup` (or apt-get install nats-server)");
}

export interface NatsServerOptions {
  /** Extra configuration appended to the generated file. */
  readonly extraConfig?: string;
  /** Fixed client port (for restarts); default: a free one. */
  readonly port?: number;
  /** Reuse this directory (store and config); default: a fresh temporary one. */
  readonly dir?: string;
  /**
   * The configuration after the listen, monitoring and ports-file lines, in place of the default
   * (JetStream in the directory, 1 MB payloads) and `extraConfig`; given the directory.
   */
  readonly config?: (dir: string) => string;
  /** Whether the server requires credentials: readiness is then a refused anonymous connection. */
  readonly requiresAuth?: boolean;
  /** CA file to trust when the server uses TLS. */
  readonly tlsCa?: string;
}

/**
 * A real nats-server with JetStream on a free port and a temporary store, started for a test and
 * removed afterwards (the launcher pattern of nats.js's test harness).
 */
export class TestNatsServer {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly url: string,
    private proc: ChildProcess,
    private readonly ownsDir: boolean,
    private readonly options: NatsServerOptions,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<TestNatsServer> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "sb-nats-")));
    const conf = join(dir, "server.conf");
    await writeFile(
      conf,
      [
        `listen: 127.0.0.1:${options.port ?? -1}`,
        `http: 127.0.0.1:-1`,
        `ports_file_dir: "${dir}"`,
        ...(options.config
          ? [options.config(dir)]
          : [`max_payload: 1MB`, `jetstream { store_dir: "${join(dir, "js")}" }`, options.extraConfig ?? ""]),
      ].join("\n"),
    );
    const proc = spawn(natsServerBinary(), ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const portsFile = join(dir, `nats-server_${proc.pid}.ports`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}: ${stderr}`);
      if (existsSync(portsFile)) {
        try {
          const ports = JSON.parse(await readFile(portsFile, "utf8")) as { nats: string[] };
          const url = ports.nats[0];
          if (url) {
            const port = Number(new URL(url).port);
            const server = new TestNatsServer(dir, port, `nats://127.0.0.1:${port}`, proc, ownsDir, options);
            await server.waitReady();
            return server;
          }
        } catch {
          // partially written; try again
        }
      }
      if (Date.now() > deadline) throw new Error(`nats-server did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async waitReady(): Promise<void> {
    try {
      const nc = await connect({ servers: this.url, timeout: 5_000, ...(this.options.tlsCa ? { tls: { caFile: this.options.tlsCa } } : {}) });
      await nc.close();
    } catch (err) {
      if (!(this.options.requiresAuth && err instanceof errors.AuthorizationError)) throw err;
    }
  }

  /** Whether the server process is still alive. */
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The monitoring endpoint (`http://…`) of the running server process, read from its ports file. */
  async monitoringUrl(): Promise<string> {
    const ports = JSON.parse(await readFile(join(this.dir, `nats-server_${this.proc.pid}.ports`), "utf8")) as { monitoring?: string[] };
    const url = ports.monitoring?.[0];
    if (!url) throw new Error(`nats-server (pid ${this.proc.pid}) reports no monitoring port`);
    return url;
  }

  /** A client connection; the caller closes it. */
  connect(name = "test"): Promise<NatsConnection> {
    return connect({ servers: this.url, name, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  }

  /** Kills the server hard (SIGKILL) without removing its store. */
  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await exited;
    for (const f of await readdir(this.dir)) if (f.endsWith(".ports")) await rm(join(this.dir, f), { force: true });
  }

  /** Starts the same server again: same port, same store. */
  async restart(): Promise<void> {
    await this.kill();
    const again = await TestNatsServer.start({ ...this.options, port: this.port, dir: this.dir });
    this.proc = again.proc;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}
