import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirFrom } from "../../src/core/config.js";
import { CliProcess } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { natsServerBinary } from "../helpers/nats-server.js";
import { eventually } from "../helpers/system.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

describe("the data directory", () => {
  it("is a checkout's data/, an installed package's XDG data directory, or SB_DATA_DIR", () => {
    expect(dataDirFrom({}, "/src/switchboard")).toBe("/src/switchboard/data");
    expect(dataDirFrom({ HOME: "/home/ann" }, "/app/node_modules/switchboard")).toBe("/home/ann/.local/share/switchboard");
    expect(dataDirFrom({ HOME: "/home/ann", XDG_DATA_HOME: "/xdg" }, "/usr/lib/node_modules/switchboard")).toBe("/xdg/switchboard");
    expect(dataDirFrom({ HOME: "/home/ann", SB_DATA_DIR: "/var/lib/sb" }, "/app/node_modules/switchboard")).toBe("/var/lib/sb");
    expect(dataDirFrom({ SB_DATA_DIR: "/var/lib/sb" }, "/src/switchboard")).toBe("/var/lib/sb");
  });

  /**
   * The package as npm installs it (a copy under node_modules; its dependencies beside it): `up`
   * must keep credentials, logs and the JetStream store out of node_modules, which the next
   * `npm install` replaces.
   */
  describe("of an installed package", () => {
    let dir: string;
    let installed: string;
    let home: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "sb-installed-"));
      installed = join(dir, "project", "node_modules", "switchboard");
      home = join(dir, "home");
      await mkdir(installed, { recursive: true });
      await mkdir(home);
      for (const name of ["bin", "dist", "assets", "nats.conf", "package.json"]) await cp(join(REPO, name), join(installed, name), { recursive: true });
      await symlink(join(REPO, "node_modules"), join(installed, "node_modules"));
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("keeps credentials, logs and the demo's store in the user's data directory", { timeout: 120_000 }, async () => {
      const port = await freePort();
      const args = ["up", "--port", String(port), "--user", "ann"];
      const env = { ...process.env, HOME: home, XDG_DATA_HOME: "", SB_DATA_DIR: "", SB_AUTH_DIR: "", NATS_URL: "", LOG_LEVEL: "info" };
      const up = new CliProcess(args, spawn(process.execPath, [join(installed, "bin", "switchboard.js"), ...args], { cwd: join(dir, "project"), env, stdio: ["pipe", "pipe", "pipe"] }));
      try {
        up.write("I need help with my budget");
        up.write("END");
        up.endInput();
        expect(await up.exited).toBe(0);
        expect(up.events.map((e) => e["event"])).toEqual(["routed", "reply", "ended"]);
      } finally {
        await up.stop("SIGKILL");
      }
      const data = join(home, ".local", "share", "switchboard");
      expect(existsSync(join(data, "auth", "host.nk"))).toBe(true);
      expect(existsSync(join(data, "auth", "users", "ann.nk"))).toBe(true);
      expect(existsSync(join(data, `jetstream-${port}`))).toBe(true);
      // A demo on a port of its own keeps its logs apart, and `logs --port` reads them.
      expect(existsSync(join(data, `logs-${port}`, "worker.log"))).toBe(true);
      expect(existsSync(join(data, "logs"))).toBe(false);
      const logs = spawnSync(process.execPath, [join(installed, "bin", "switchboard.js"), "logs", "worker", "--json", "--port", String(port)], { env, encoding: "utf8" });
      expect(logs.status).toBe(0);
      expect(logs.stdout).toContain('"event":"worker.started"');
      expect(existsSync(join(installed, "data"))).toBe(false);
    });

    it("names a nats-server configuration that starts, for running the bus by hand", { timeout: 60_000 }, async () => {
      const env = { ...process.env, HOME: home, XDG_DATA_HOME: "", SB_DATA_DIR: "", SB_AUTH_DIR: "", NATS_URL: "" };
      const init = spawnSync(process.execPath, [join(installed, "bin", "switchboard.js"), "auth", "init"], { cwd: join(dir, "project"), env, encoding: "utf8" });
      expect(init.status, init.stderr).toBe(0);
      const data = join(home, ".local", "share", "switchboard");
      const conf = join(data, "nats-4222.conf");
      expect(init.stdout).toContain(`start nats-server with: nats-server -c ${conf}`);
      // The package's own nats.conf would look for the credentials inside node_modules.
      const port = await freePort();
      const server = spawn(natsServerBinary(), ["-c", conf, "-p", String(port), "-m", "0"], { cwd: join(dir, "project"), stdio: ["ignore", "ignore", "pipe"] });
      try {
        let stderr = "";
        server.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        await eventually(() => stderr.includes("Server is ready"), 10_000, `nats-server ready (${stderr.slice(-300)})`);
        const admin = spawnSync(process.execPath, [join(installed, "bin", "switchboard.js"), "admin", "agents", "--port", String(port)], { env, encoding: "utf8", timeout: 20_000 });
        // Its credentials are accepted: it reaches the server, which has no host yet.
        expect(admin.stderr).toMatch(/nobody is listening on sb\.host/);
      } finally {
        server.kill("SIGKILL");
      }
    });
  });
});
