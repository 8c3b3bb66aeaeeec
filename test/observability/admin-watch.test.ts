import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";

const CLEAR = "\x1b[H\x1b[2J";
const CSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

describe("switchboard admin watch", () => {
  let server: TestNatsServer;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 20_000, "host start");
    worker = runCli(["worker", "--agents", "router,user_proxy,finance", "--id", "w-watched"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "worker start");
    const chat = runCli(["chat", "--user", "alice"], env);
    chat.write("I need help with my budget");
    chat.endInput();
    expect(await chat.exited).toBe(0);
  }, 90_000);

  afterAll(async () => {
    await worker?.stop();
    await host?.stop();
    await server?.stop();
  });

  it("repaints agent types, workers and routing in 80 columns, and leaves cleanly on Ctrl-C", async () => {
    const watch = TerminalCli.start(["admin", "watch", "--interval", "0.5"], env);
    try {
      // Three screens: the second and later show rates.
      await watch.waitFor("Ctrl-C quits", 3, 20_000);
      const frames = watch.output.split(CLEAR).slice(1, -1);
      expect(frames.length).toBeGreaterThanOrEqual(2);
      const last = (frames.at(-1) ?? "").replace(CSI, "").replace(/\r/g, "");
      const lines = last.split("\n").filter((l) => l !== "");
      for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
      expect(last).toMatch(/^AGENT TYPE\s+WRK\s+TURNS\s+TURN\/S/m);
      // The router and the user proxy handled the turn once each, and so did finance.
      expect(last).toMatch(/^finance\s+1\s+1\s+0\.0\s/m);
      expect(last).toMatch(/^router\s+1\s+1\s/m);
      expect(last).toMatch(/^user_proxy\s+1\s+1\s/m);
      expect(last).toMatch(/^w-watched\s+\S+\s+router,user_proxy,finance\s+3\s/m);
      expect(last).toContain("routing: routed 1, clarify 0, no agent 0, hand-off 0");

      watch.type(Keys.CtrlC);
      expect(await watch.exited).toBe(0);
      // The cursor is shown again on the way out.
      expect(watch.output.slice(watch.output.lastIndexOf(CLEAR))).toContain("\x1b[?25h");
    } finally {
      await watch.stop();
    }
  });
});
