import { connectNats } from "../../core/connection.js";
import { createLogger } from "../../core/logging.js";
import { Role } from "../../core/roles.js";
import { Subjects } from "../../core/subjects.js";
import { Host } from "../../host/host.js";
import { untilShutdown } from "../lifecycle.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";

export const HOST_HELP = `Usage: switchboard host [options]

Runs the control plane: creates the event stream and the agents/workers/sessions buckets,
serves registration, heartbeats and admin queries, expires silent workers and keeps session
state. Several hosts may run at once. Stops gracefully on SIGINT/SIGTERM.

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
  const nc = await connectNats(config, { name: "switchboard-host", role: Role.Host, warn: warnOnStderr });
  const host = new Host({
    nc,
    subjects: new Subjects(config.prefix),
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    workerTtlMs: config.workerTtlMs,
    infrastructure: { replicas: config.replicas },
  });
  await host.start();
  const why = await untilShutdown();
  logger.info({ event: "host.signal", signal: why }, "shutting down");
  await host.close();
  await nc.drain();
  return 0;
}
