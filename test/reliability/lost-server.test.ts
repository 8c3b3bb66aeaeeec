import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { TestNatsServer } from "../helpers/nats-server.js";

interface LogLine {
  readonly level: number;
  readonly event?: string;
  readonly msg?: string;
}

const WARN = 40;

/** Every line a process wrote on stderr, each of which must be a log line (no bare error text). */
function logLines(p: CliProcess, fromChar = 0): LogLine[] {
  return p.stderr
    .slice(fromChar)
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`stderr of switchboard ${p.args.join(" ")} has a line that is not a log line: ${l}`);
      }
    });
}

/** The events of the lines at warn level or above, in order. */
function warnings(p: CliProcess, fromChar = 0): (string | undefined)[] {
  return logLines(p, fromChar)
    .filter((l) => l.level >= WARN)
    .map((l) => l.event);
}

function count(p: CliProcess, event: string, fromChar = 0): number {
  return logLines(p, fromChar).filter((l) => l.event === event).length;
}

describe("a host and a worker that lose their server", () => {
  let server: TestNatsServer;
  let host: CliProcess;
  let worker: CliProcess;
  beforeEach(async () => {
    server = await TestNatsServer.start();
    // Frequent heartbeats: over the outage a worker that warned on each failure would do it often.
    const env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "5000" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 30_000, "host started");
    // The user proxy's consumer is the last to stop, after a stop without a server closed the connection.
    worker = runCli(["worker", "--agents", "finance,user_proxy"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "worker started");
  });
  afterEach(async () => {
    await worker.stop("SIGKILL");
    await host.stop("SIGKILL");
    await server.stop();
  });

  it("log the lost and restored connection once each, and stop with exit 0 and no error while it is down", async () => {
    await server.kill();
    for (const p of [worker, host]) await p.waitFor(() => count(p, "connection.lost") === 1, 15_000, "connection.lost");

    // Long enough for about a dozen heartbeats and a few expiry sweeps to fail.
    await new Promise((r) => setTimeout(r, 6_000));
    for (const p of [worker, host]) {
      expect(warnings(p)).toEqual(["connection.lost"]);
      expect(count(p, "connection.restored")).toBe(0);
    }

    await server.restart();
    for (const p of [worker, host]) await p.waitFor(() => count(p, "connection.restored") === 1, 15_000, "connection.restored");
    // A few heartbeats and sweeps after it is back: none fails, and the host still knows the worker
    // (a re-registration would warn).
    await new Promise((r) => setTimeout(r, 2_000));
    for (const p of [worker, host]) expect(warnings(p)).toEqual(["connection.lost"]);

    await server.kill();
    for (const p of [worker, host]) await p.waitFor(() => count(p, "connection.lost") === 2, 15_000, "second connection.lost");
    for (const p of [worker, host]) {
      const stoppingAt = p.stderr.length;
      const asked = Date.now();
      expect(await p.stop("SIGTERM")).toBe(0);
      expect(Date.now() - asked).toBeLessThan(5_000);
      expect(p.lines).toEqual([]);
      // Nothing at warn or above from the stop itself, and every line a log line.
      expect(warnings(p, stoppingAt)).toEqual([]);
      expect(warnings(p)).toEqual(["connection.lost", "connection.lost"]);
    }
  }, 90_000);
});
