import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { TestSystem } from "../helpers/system.js";

/** Workers of one type share its durable consumer; the last to start sets its delivery settings. */
describe("a worker that starts with other delivery settings than the workers before it", () => {
  let sys: TestSystem;
  const workers: CliProcess[] = [];

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
  });
  afterAll(async () => {
    for (const w of workers) await w.stop("SIGKILL");
    await sys.close();
  });

  const start = async (env: Record<string, string>) => {
    const worker = runCli(["worker", "--agents", "hr"], { NATS_URL: sys.url, ...env });
    workers.push(worker);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
    return worker;
  };

  it("says that it changed the shared consumer, and what, once", async () => {
    const first = await start({});
    const same = await start({});
    const other = await start({ SB_MAX_DELIVER: "1", SB_ACK_WAIT_MS: "5000" });
    for (const w of [first, same]) expect(w.stderr).not.toContain("consumer.settings_changed");
    const line = other.stderr.split("\n").find((l) => l.includes('"event":"consumer.settings_changed"'));
    expect(line).toBeDefined();
    expect(JSON.parse(line ?? "{}")).toMatchObject({ level: 40, agentType: "hr", msg: expect.stringContaining("max_deliver 5 → 1") });
    expect(line).toContain("ack_wait 10000 ms → 5000 ms");
  });
});
