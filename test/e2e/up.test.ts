import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rm } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { alive, runFilesFor } from "../../src/cli/children.js";
import { DATA_DIR } from "../../src/cli/paths.js";
import { runCliToEnd } from "../helpers/cli.js";
import { ModelStub } from "../helpers/model-stub.js";
import { eventually } from "../helpers/system.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";
import { freePort } from "../helpers/ports.js";

/** The first line a NATS server sends on `port` (INFO {...}). */
async function natsInfo(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    socket.once("error", reject);
    socket.once("data", (d) => {
      socket.destroy();
      resolve(d.toString().split("\r\n")[0] ?? "");
    });
  });
}

/** The pids `up` printed when it was ready, by name. */
function startedPids(screen: string): Record<string, number> {
  const flat = screen.replace(/\r?\n│\s*/g, " ");
  const match = /Started nats-server \(pid (\d+)\), host \(pid (\d+)\), worker \(pid (\d+)\)/.exec(flat);
  if (!match) throw new Error(`no pids on the screen:\n${screen.slice(-2000)}`);
  return { nats: Number(match[1]), host: Number(match[2]), worker: Number(match[3]) };
}

/** The `switchboard up` process: the child of `script` (which runs it through `sh -c … exec`). */
function upPid(t: TerminalCli): number {
  const out = execFileSync("ps", ["-o", "pid=", "--ppid", String(t.pid)]).toString().trim();
  return Number(out.split(/\s+/)[0]);
}

/** `switchboard up` in a terminal, on a port of its own (beside any server on 4222). */
describe("switchboard up", { timeout: 120_000 }, () => {
  const terminals: TerminalCli[] = [];
  const pids: number[] = [];
  const ports: number[] = [];
  const up = async (env: Record<string, string> = {}, flags: readonly string[] = []) => {
    const port = await freePort();
    ports.push(port);
    const t = TerminalCli.start(["up", "--port", String(port), "--user", "uptester", ...flags], { NATS_URL: "", ...env });
    terminals.push(t);
    return { t, port };
  };
  afterEach(async () => {
    for (const t of terminals.splice(0)) await t.stop();
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
    for (const port of ports.splice(0)) {
      await rm(`${DATA_DIR}/jetstream-${port}`, { recursive: true, force: true });
      await rm(`${DATA_DIR}/nats-${port}.conf`, { force: true });
      await rm(`${DATA_DIR}/nats-server-${port}.pid`, { force: true });
      for (const file of runFilesFor(DATA_DIR, port)) await rm(file, { force: true });
    }
  });

  it("starts nats-server on the port asked for, restarts a worker that dies, and stops everything on Ctrl-C during a reply", async () => {
    const { t, port } = await up({ SB_AGENT_DELAY_MS: "3000" });
    await t.waitFor("Switchboard is up", 1, 60_000);
    await t.waitFor("what do you need help with?");
    const started = startedPids(t.screen);
    pids.push(...Object.values(started));
    // The server it started is the one on that port, with the configuration written for it.
    expect(await natsInfo(port)).toMatch(/^INFO /);
    expect(readFileSync(`/proc/${started["nats"]}/cmdline`, "utf8")).toContain(`nats-${port}.conf`);
    // Adding and removing a user reaches the server on that port, found by --port alone.
    for (const verb of ["add", "remove"]) {
      const changed = await runCliToEnd(["users", verb, `portuser${port}`, "--port", String(port)], { NATS_URL: "" });
      expect(changed.stdout, changed.stderr).toContain(`nats-server ${started["nats"]} reloaded its configuration`);
    }

    process.kill(started["worker"] ?? 0, "SIGKILL");
    await t.waitFor("The worker stopped (killed by SIGKILL); restarting it (1 of 3).");
    await t.waitFor("The worker is back (pid", 1, 40_000);
    const restarted = Number(/The worker is back \(pid (\d+)\)/.exec(t.screen)?.[1]);
    pids.push(restarted);
    expect(alive(restarted)).toBe(true);

    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: I need help with my budget", 1, 30_000);
    t.type(`and the travel costs?${Keys.Enter}`);
    await t.waitFor("Waiting for finance");
    // Ctrl-C while the spinner waits for the answer: the chat leaves and `up` stops what it started.
    t.type(Keys.CtrlC);
    expect(await t.exited).toBe(0);
    for (const pid of [started["nats"] ?? 0, started["host"] ?? 0, restarted]) {
      await eventually(() => !alive(pid), 15_000, `pid ${pid} to be gone`);
    }
  });

  it("runs the agents of --agents-file in its worker, in place of the built-in hr and finance", async () => {
    const stub = await ModelStub.start();
    try {
      const file = join(mkdtempSync(join(tmpdir(), "sb-up-llm-")), "agents.yaml");
      writeFileSync(
        file,
        [
          "defaults: { url: '" + stub.url + "', model: stub-model, apiKeyEnv: SB_TEST_UP_KEY }",
          "agents:",
          "  - { type: finance, description: 'Finance: budgets and expenses', keywords: [budget], model: { systemPrompt: You are the finance desk. } }",
          "  - { type: travel, description: 'Business travel: flights and hotels', keywords: [flight], model: { systemPrompt: You are the travel desk. } }",
        ].join("\n"),
      );
      const { t } = await up({ SB_TEST_UP_KEY: "k-up-1" }, ["--agents-file", file]);
      // Ready only once the file's own agent types are there too.
      await t.waitFor("Switchboard is up", 1, 60_000);
      await t.waitFor("what do you need help with?");
      pids.push(...Object.values(startedPids(t.screen)));
      t.type(`I need help with my budget${Keys.Enter}`);
      await t.waitFor("system: You are the finance desk.", 1, 30_000);
      expect(t.screen).not.toContain("Hello from finance_agent");
      await t.waitFor("You → finance");
      t.type(`thanks, END${Keys.Enter}`);
      await t.waitFor("New conversation");
      t.type(`Book me a flight to Munich${Keys.Enter}`);
      await t.waitFor("system: You are the travel desk.", 1, 30_000);
      expect(stub.requests.map((r) => r.authorization)).toEqual(["Bearer k-up-1", "Bearer k-up-1"]);
    } finally {
      await stub.close();
    }
  });

  it("runs the agents of --module in its worker, and only them with --no-builtin-agents", async () => {
    const module = fileURLToPath(new URL("../fixtures/modules/travel.mjs", import.meta.url));
    const { t } = await up({}, ["--module", module, "--no-builtin-agents"]);
    await t.waitFor("Switchboard is up", 1, 60_000);
    await t.waitFor("what do you need help with?");
    pids.push(...Object.values(startedPids(t.screen)));
    t.type(`Book me a flight to Munich${Keys.Enter}`);
    await t.waitFor("Trip desk, turn 1.", 1, 30_000);
    t.type(`thanks, END${Keys.Enter}`);
    await t.waitFor("New conversation");
    // The demo's finance desk is not running: a budget question finds no agent.
    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Available agents: travel", 1, 30_000);
    expect(t.screen).not.toContain("Hello from finance_agent");

    const bad = await runCliToEnd(["up", "--port", String(await freePort()), "--no-builtin-agents"], { NATS_URL: "" });
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--no-builtin-agents needs --module or --agents-file/) as unknown });
    const missing = await runCliToEnd(["up", "--port", String(await freePort()), "--module", "./no-such-agents.mjs"], { NATS_URL: "" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot load agent module \.\/no-such-agents\.mjs/);
  });

  it("checks --agents-file before it starts anything", async () => {
    const port = await freePort();
    ports.push(port);
    const file = join(mkdtempSync(join(tmpdir(), "sb-up-llm-bad-")), "agents.yaml");
    writeFileSync(file, "agents:\n  - type: hr\n    description: People\n    model: { url: 'ftp://models', model: m }\n");
    const { code, stderr } = await runCliToEnd(["up", "--port", String(port), "--agents-file", file], { NATS_URL: "" });
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: agents[0] (hr): model.url must be an http(s) URL`);
    // Nothing was started: no server answers on the port.
    await expect(natsInfo(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  /** An `up` that is up and at its prompt, with the pids it started. */
  const upAndReady = async () => {
    const { t, port } = await up();
    await t.waitFor("Switchboard is up", 1, 60_000);
    await t.waitFor("what do you need help with?");
    const started = startedPids(t.screen);
    pids.push(...Object.values(started));
    return { t, port, started };
  };

  /** Kills `up` outright, waits for its host and worker to stop by themselves, and starts the next `up` on the port. */
  const killAndStartNext = async (t: TerminalCli, port: number, started: Record<string, number>) => {
    process.kill(upPid(t), "SIGKILL");
    await t.exited;
    for (const pid of [started["host"] ?? 0, started["worker"] ?? 0]) await eventually(() => !alive(pid), 15_000, `pid ${pid} to stop by itself`);
    // nats-server cannot notice; the next `up` on the port stops it before starting its own.
    expect(alive(started["nats"] ?? 0)).toBe(true);
    const next = TerminalCli.start(["up", "--port", String(port), "--user", "uptester"], { NATS_URL: "" });
    terminals.push(next);
    await next.waitFor("Switchboard is up", 1, 60_000);
    await next.waitFor("what do you need help with?");
    expect(next.screen.replace(/\r?\n│\s*/g, " ")).toContain(`left running when it was killed: nats-server (pid ${started["nats"]})`);
    expect(alive(started["nats"] ?? 0)).toBe(false);
    const restarted = startedPids(next.screen);
    pids.push(...Object.values(restarted));
    expect(restarted["nats"]).not.toBe(started["nats"]);
  };

  it("leaves nothing running when it is SIGKILLed: its host and worker stop by themselves, and the next up stops its server", async () => {
    const { t, port, started } = await upAndReady();
    await killAndStartNext(t, port, started);
  });

  it("still stops a killed up's server when a second up used it and left meanwhile", async () => {
    const { t, port, started } = await upAndReady();
    // A second up on the same port uses the running server, and leaves at the end of its input.
    const second = await runCliToEnd(["up", "--port", String(port), "--user", "uptester"], { NATS_URL: "" }, 90_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain("Using the NATS server already running");
    await killAndStartNext(t, port, started);
  });

  // SIGHUP is what a closed terminal window sends: the processes `up` started live in their own
  // process group and would outlive it.
  it.each(["SIGTERM", "SIGHUP"] as const)("stops everything it started on %s at the prompt", async (signal) => {
    const { t } = await up();
    await t.waitFor("Switchboard is up", 1, 60_000);
    await t.waitFor("what do you need help with?");
    const started = startedPids(t.screen);
    pids.push(...Object.values(started));
    process.kill(upPid(t), signal);
    expect(await t.exited).toBe(0);
    for (const pid of Object.values(started)) await eventually(() => !alive(pid), 15_000, `pid ${pid} to be gone`);
  });
});
