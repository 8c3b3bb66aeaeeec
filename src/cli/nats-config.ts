import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DATA_DIR, DATA_DIR_IS_PROJECT_DATA, DEFAULT_NATS_PORT, NATS_CONF, natsPidFileFor } from "./paths.js";

/**
 * nats.conf as it is, for port 4222 in a checkout; otherwise a copy in the data directory with
 * that port, absolute paths into the data directory (which may lie outside the package), and for
 * another port a free monitoring port and its own JetStream store and pid file, so that it can
 * run beside a server started from nats.conf (nats-server refuses a store directory given twice,
 * in the file and on the command line).
 */
export function natsConfigFor(port: number): string {
  const defaultPort = port === DEFAULT_NATS_PORT;
  if (defaultPort && DATA_DIR_IS_PROJECT_DATA) return NATS_CONF;
  const conf = readFileSync(NATS_CONF, "utf8")
    .replace(/^port:.*$/m, `port: ${port}`)
    .replace(/^http:.*$/m, (line) => (defaultPort ? line : "http: 127.0.0.1:-1"))
    .replace(/^pid_file:.*$/m, `pid_file: ${JSON.stringify(natsPidFileFor(port))}`)
    .replace(/store_dir:.*$/m, `store_dir: ${JSON.stringify(join(DATA_DIR, defaultPort ? "jetstream" : `jetstream-${port}`))}`)
    // Includes are relative to the file that includes them, and the copy lives in the data directory.
    .replace(/^(\s*include\s+")data\//gm, "$1");
  const file = join(DATA_DIR, `nats-${port}.conf`);
  mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(file, `# Written by switchboard from nats.conf (by \`up --port ${port}\` at every start, and by \`auth init\`).\n${conf}`);
  return file;
}
