import { connectNats, logConnectionChanges } from "../../core/connection.js";
import { createLogger } from "../../core/logging.js";
import { Role } from "../../core/roles.js";
import { Subjects } from "../../core/subjects.js";
import { Host } from "../../host/host.js";
import { CancelledError } from "../../core/errors.js";
import { stopGracefully, untilShutdown } from "../lifecycle.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";

export const HOST_HELP = `Usage: switchboard host [options]

Runs the control plane: creates the event and dead-letter streams and the agents, workers,
sessions, agent_state and routing buckets, serves registration, heartbeats and admin queries, expires silent workers and keeps session
state. Several hosts may run at once. Waits for a NATS server that is not up yet (up to
SB_CONNECT_WAIT_MS, default 60000). Stops gracefully on SIGINT/SIGTERM/SIGHUP and exits 0.

Options:
  --replicas <n>      replicas for the stream and buckets, 3 on a cluster (env SB_REPLICAS, default 1)
${COMMON_HELP}`;

export async function hostCommand(args: readonly string[]): Promise<number> {
  const { values } = parse("host", args, { replicas: { type: "string" } });
  if (values.help) {
    console.log(HOST_HELP);
    return 0;
  }
  const config = configFrom(values, { replicas: values.replicas });
  const logger = createLogger("switchboard-host", { level: config.logLevel });
  const stop = new AbortController();
  const shutdown = untilShutdown();
  void shutdown.then(() => stop.abort());
  let nc;
  try {
    nc = await connectNats(config, { name: "switchboard-host", role: Role.Host, warn: warnOnStderr, waitMs: config.connectWaitMs, onWait: (m) => logger.warn({ event: "host.waiting_for_nats" }, m), signal: stop.signal });
  } catch (err) {
    if (err instanceof CancelledError) return 0;
    throw err;
  }
  logConnectionChanges(nc, logger);
  const host = new Host({
    nc,
    subjects: new Subjects(config.prefix),
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    workerTtlMs: config.workerTtlMs,
    infrastructure: { replicas: config.replicas },
  });
  const started = host.start().then(
    () => true,
    (err: unknown) => {
      if (stop.signal.aborted) return false;
      throw err;
    },
  );
  // A stop asked for while the host is still starting (waiting for JetStream) is honoured at once.
  if (!(await Promise.race([started, shutdown.then(() => false)]))) {
    logger.info({ event: "host.signal" }, "stopped while starting");
    await stopGracefully(nc, () => host.close(), logger);
    return 0;
  }
  const why = await shutdown;
  logger.info({ event: "host.signal", signal: why }, "shutting down");
  await stopGracefully(nc, () => host.close(), logger);
  return 0;
}
