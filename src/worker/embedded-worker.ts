import type { NatsConnection } from "@nats-io/transport-node";
import type { AgentDefinition } from "../agents/define-agent.js";
import { loadConfig } from "../core/config.js";
import { connectNats, logConnectionChanges } from "../core/connection.js";
import { ConfigError, errorMessage } from "../core/errors.js";
import { newId, validateToken } from "../core/ids.js";
import { createLogger } from "../core/logging.js";
import { Role } from "../core/roles.js";
import { Subjects } from "../core/subjects.js";
import type { AgentTypeDefinition } from "./agent.js";
import { rateLimitFor } from "./rate-limit.js";
import { Worker as WorkerImpl } from "./worker.js";

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** The agents to run: `defineAgent` results or low-level definitions. At least one. */
  readonly agents: readonly (AgentDefinition | AgentTypeDefinition)[];
  /**
   * A connection to use (the worker does not close it). Default: the worker connects to
   * `servers` itself, and closes that connection on `close()`.
   */
  readonly nc?: NatsConnection | undefined;
  /** NATS server URL(s), comma-separated, when `nc` is not given. Default: `NATS_URL`, else `nats://127.0.0.1:4222`. */
  readonly servers?: string | undefined;
  /** Credentials (NKey seed file) for the connection the worker makes. Default: `SB_CREDS`, else none. */
  readonly credsFile?: string | undefined;
  /** Subject prefix shared with the host. Default: `SB_PREFIX`, else `"sb"`. */
  readonly prefix?: string | undefined;
  /** Messages handled at once per agent type. Default: `SB_CONCURRENCY`, else 64. */
  readonly concurrency?: number | undefined;
  /** pino log level of the worker's JSON logs on stderr. Default: `LOG_LEVEL`, else `"info"`. */
  readonly logLevel?: string | undefined;
  /** Worker id. Default: a fresh random id. */
  readonly workerId?: string | undefined;
}

/** A running worker embedded in your own process. */
export interface Worker {
  readonly id: string;
  /**
   * Connects (unless given `nc`), waits for a host, registers the agents and starts taking
   * messages. Aborting `signal` gives up a start in progress, or stops the started worker as
   * {@link close} does.
   */
  start(signal?: AbortSignal): Promise<void>;
  /** Finishes the turns in flight, deregisters and closes the connection it made. Idempotent. */
  close(): Promise<void>;
  /** Resolves once the worker has stopped. */
  closed(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Runs agents inside your own process instead of `switchboard worker --module`. Settings the
 * options leave out come from the same environment variables as the CLI's.
 *
 * @example
 * ```ts
 * import { createWorker } from "switchboard";
 * import { travel } from "./agents.js";
 *
 * await using worker = createWorker({ agents: [travel], servers: "nats://127.0.0.1:4222" });
 * await worker.start();
 * ```
 */
export function createWorker(options: WorkerOptions): Worker {
  if (!options.agents || options.agents.length === 0) throw new ConfigError("createWorker needs at least one agent");
  // Read here, not at import: importing the package reads nothing from the environment.
  const config = loadConfig({ natsUrl: options.servers, credsFile: options.credsFile, prefix: options.prefix, logLevel: options.logLevel, concurrency: options.concurrency });
  const logger = createLogger("switchboard-worker", { level: config.logLevel });
  let impl: WorkerImpl | undefined;
  let owned: NatsConnection | undefined;
  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const done = new Promise<void>((resolve) => (resolveClosed = resolve));
  const id = validateToken("worker id", options.workerId ?? newId("w"));
  const worker: Worker = {
    id,
    async start(signal?: AbortSignal): Promise<void> {
      if (impl) throw new ConfigError("this worker has already been started");
      const nc = options.nc ?? (owned = await connectNats(config, { name: "switchboard-worker", role: Role.Worker }));
      // A connection it was given is its owner's to report on.
      if (owned) logConnectionChanges(owned, logger);
      impl = new WorkerImpl({
        nc,
        subjects: new Subjects(config.prefix),
        logger,
        agents: options.agents,
        consumer: { ackWaitMs: config.ackWaitMs, maxDeliver: config.maxDeliver, concurrency: config.concurrency },
        drainTimeoutMs: config.drainTimeoutMs,
        // The shipped worker's defaults: the same per-user limit as `switchboard worker`.
        rateLimit: rateLimitFor(config, nc),
        workerId: id,
      });
      await impl.start(signal);
      signal?.addEventListener(
        "abort",
        () => {
          worker.close().catch((err: unknown) => logger.error({ event: "worker.close_failed", err: errorMessage(err) }, "could not stop the worker"));
        },
        { once: true },
      );
      if (signal?.aborted) await worker.close();
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await impl?.close();
        if (owned && !owned.isClosed()) await owned.drain();
        resolveClosed();
      })();
      return closing;
    },
    closed: () => done,
    [Symbol.asyncDispose]: () => worker.close(),
  };
  return worker;
}
