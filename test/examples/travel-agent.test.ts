import { execFile, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess, runCli } from "../helpers/cli.js";
import { TestNatsServer } from "../helpers/nats-server.js";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE = join(REPO, "examples", "travel-agent");

/**
 * The example agent package, installed and built the way a user would (`npm install` of its
 * `file:../..` dependency, `tsc`), then run by the `switchboard` binary that install put in its
 * node_modules/.bin. Tests have no registry: the copy drops the devDependencies and compiles with
 * the repository's own TypeScript and Node types.
 */
describe("examples/travel-agent", () => {
  let dir: string;
  let server: TestNatsServer;
  let env: Record<string, string>;
  let host: CliProcess | undefined;
  let worker: CliProcess | undefined;
  let builtins: CliProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sb-example-"));
    for (const name of ["package.json", "tsconfig.json", "src"]) await cp(join(EXAMPLE, name), join(dir, name), { recursive: true });
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies?: unknown };
    delete pkg.devDependencies;
    pkg.dependencies["switchboard"] = `file:${REPO}`;
    await writeFile(join(dir, "package.json"), JSON.stringify(pkg, null, 2));
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund"], { cwd: dir });
    await run(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", ".", "--typeRoots", join(REPO, "node_modules/@types")], { cwd: dir });
    server = await TestNatsServer.start();
    env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 15_000, "host start");
  }, 240_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await builtins?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("builds against the package's declarations and runs in the installed worker, as its npm start does", async () => {
    // As its README runs it: beside `up`'s worker of built-in agents, in a worker of its own.
    builtins = runCli(["worker", "--agents", "router,user_proxy,hr,finance"], env);
    await builtins.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 20_000, "built-in worker start");
    const bin = join(dir, "node_modules", ".bin", "switchboard");
    const start = (JSON.parse(await readFile(join(EXAMPLE, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start.split(" ");
    expect(start[0]).toBe("switchboard");
    const args = start.slice(1);
    worker = new CliProcess(args, spawn(bin, args, { cwd: dir, env: { ...process.env, LOG_LEVEL: "info", ...env }, stdio: ["pipe", "pipe", "pipe"] }));
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 20_000, "worker start");
    // Only the travel agent: the built-in ones stay with the worker they belong to.
    expect(worker.stderr).toMatch(/"agentTypes":\["travel"\]/);

    const chat = runCli(["chat", "--user", "frank"], env);
    for (const line of ["What is the hotel limit for my trip to Munich?", "and in Paris? book it", "I need a flight"]) chat.write(line);
    chat.endInput();
    expect(await chat.exited).toBe(0);
    expect(chat.events.map((e) => [e["event"], e["agent"] ?? null, e["content"] ?? null])).toEqual([
      ["routed", "travel", null],
      ["reply", "travel", "Checking the travel policy for munich… Hotels in munich are covered up to 180 EUR a night."],
      ["ended", "travel", "Checking the travel policy for paris… Hotels in paris are covered up to 220 EUR a night. Your request is filed; have a good trip!"],
      // A new conversation after the agent ended the last one: no city remembered.
      ["routed", "travel", null],
      ["reply", "travel", "Which city are you travelling to? I know London, Munich, Paris and Oslo."],
    ]);
  });
});
