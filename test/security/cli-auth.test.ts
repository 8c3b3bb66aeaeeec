import { execFile, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connect, errors } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsPath } from "../../src/core/credentials.js";
import { Role } from "../../src/core/roles.js";
import { CliProcess, runCli, runCliToEnd } from "../helpers/cli.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually } from "../helpers/system.js";
import { freePort } from "../helpers/ports.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Runs a chat in JSON-lines mode to the end of its input. */
async function chat(env: Record<string, string>, args: readonly string[], lines: readonly string[]): Promise<CliProcess> {
  const p = runCli(["chat", ...args], env);
  for (const line of lines) p.write(line);
  p.endInput();
  await p.exited;
  return p;
}

/** Host, worker and chats as separate processes, each with its own credentials, as deployed. */
describe("the command line against the shipped, secured configuration", () => {
  let server: SecureTestServer;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "bob"] });
    env = server.env({ SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" });
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 15_000, "host start");
    // Keyword routing: these tests are about credentials, and the word vectors cost a second of CPU.
    worker = runCli(["worker", "--classifier", "keyword"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
  });

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await server?.stop();
  });

  it("keeps credentials owner-only", async () => {
    expect(await mode(server.store.dir)).toBe(0o700);
    expect(await mode(join(server.store.dir, "users"))).toBe(0o700);
    for (const file of [credentialsPath(server.store.dir, Role.Host), credentialsPath(server.store.dir, Role.Client, "alice"), server.store.accountsFile]) {
      expect(await mode(file)).toBe(0o600);
    }
    // The server's file names public keys only.
    expect(await readFile(server.store.accountsFile, "utf8")).not.toMatch(/\bSU[A-Z2-7]{50,}/);
  });

  it("a user chats with its own credentials file, and only as itself", async () => {
    const aliceFile = credentialsPath(server.store.dir, Role.Client, "alice");
    const ok = await chat(env, ["--creds", aliceFile], ["I need help with my budget", "END"]);
    expect(ok.events.map((e) => e["event"]), ok.stderr).toEqual(["routed", "reply", "ended"]);

    const impostor = await chat(env, ["--creds", aliceFile, "--user", "bob"], ["hello"]);
    expect(await impostor.exited).toBe(2);
    expect(impostor.stderr).toMatch(/holds the credentials of user "alice", who may not chat as "bob"/);

    // A service's credentials: one sentence saying what to use, and no log line before it.
    const asAdmin = await chat(env, ["--creds", credentialsPath(server.store.dir, Role.Admin), "--user", "alice"], ["hello"]);
    expect(await asAdmin.exited).toBe(1);
    expect(asAdmin.stderr).toMatch(/^switchboard: .*chat with that user's credentials \(--creds FILE\)\n$/);

    const stranger = await chat(env, ["--user", "mallory"], ["hello"]);
    expect(await stranger.exited).toBe(1);
    expect(stranger.stderr).toMatch(/refused the connection: it requires credentials and there are none for user "mallory".*switchboard users add mallory/);
  });

  it("brings the permissions of an older accounts file up to date on init, and says to reload", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sb-auth-upgrade-"));
    try {
      const authEnv = { SB_AUTH_DIR: join(dir, "auth") };
      const first = await runCliToEnd(["auth", "init"], authEnv);
      expect(first.code).toBe(0);
      const accounts = join(dir, "auth", "accounts.conf");
      const current = await readFile(accounts, "utf8");
      // What an earlier version wrote: the host could not yet read the event stream by itself.
      const older = current.replaceAll('"$JS.FC.SB_EVENTS.>", ', "");
      expect(older).not.toBe(current);
      await writeFile(accounts, older);
      const upgraded = await runCliToEnd(["auth", "init"], authEnv);
      expect(upgraded.code).toBe(0);
      expect(upgraded.stdout).toContain("updated the roles' permissions");
      expect(upgraded.stdout).toContain("switchboard auth reload");
      expect(await readFile(accounts, "utf8")).toBe(current);
      expect(await mode(accounts)).toBe(0o600);
      const again = await runCliToEnd(["auth", "init"], authEnv);
      expect(again.stdout).toContain("already set up");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("admin queries run with the admin credentials; replaying needs the host's", async () => {
    const agents = await runCliToEnd(["admin", "agents"], env);
    expect(agents.code, agents.stderr).toBe(0);
    expect(agents.stdout).toMatch(/^finance\s+yes/m);
    const replay = await runCliToEnd(["admin", "replay", "1"], env);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/permission denied sending a request to sb\.host\.admin\.replay: the admin role only reads; .*--creds .*host\.nk/);
    const asHost = await runCliToEnd(["admin", "replay", "1", "--creds", credentialsPath(server.store.dir, Role.Host)], env);
    expect(asHost.stderr).toMatch(/no dead letter 1/);
  });

  it("adds a user, reloads the server so it can chat at once, and removes it again", async () => {
    const reloadArgs = ["--pid-file", server.pidFile];
    const added = await runCliToEnd(["users", "add", "carol", ...reloadArgs], env);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/created .*users\/carol\.nk[\s\S]*nats-server \d+ reloaded its configuration/);
    expect((await runCliToEnd(["users", "list"], env)).stdout.split("\n")).toEqual(["alice", "bob", "carol"]);
    await eventually(async () => {
      const p = await chat(env, ["--user", "carol"], ["Talk to HR please"]);
      return p.events[0]?.["event"] === "routed";
    }, 10_000, "carol chatting");

    // A removed user's open connection is closed by the reload, and it cannot come back.
    const carol = await server.connectAs(Role.Client, "carol");
    let dropped = false;
    const watching = (async () => {
      for await (const s of carol.status()) if (s.type === "disconnect") dropped = true;
    })();
    const removed = await runCliToEnd(["users", "remove", "carol", ...reloadArgs], env);
    expect(removed.code, removed.stderr).toBe(0);
    await eventually(() => dropped || carol.isClosed(), 10_000, "carol disconnected");
    await carol.close();
    await watching;
    const again = await chat(env, ["--user", "carol"], ["hello"]);
    expect(await again.exited).toBe(1);

    const missing = await runCliToEnd(["users", "remove", "carol", ...reloadArgs], env);
    expect(missing.stderr).toMatch(/there is no user "carol"/);
  });

  it("fails `auth reload` when there is no server to reload, and says so on stderr", async () => {
    const nowhere = join(server.store.dir, "no-such.pid");
    const reload = await runCliToEnd(["auth", "reload", "--pid-file", nowhere], env);
    expect(reload.code).toBe(1);
    expect(reload.stdout).toBe("");
    expect(reload.stderr).toContain(`nats-server not reloaded: no pid file at ${nowhere}`);
    // Adding a user changes the files whether or not a server runs: that succeeds, with the warning.
    const added = await runCliToEnd(["users", "add", "dave", "--pid-file", nowhere], env);
    expect(added.code).toBe(0);
    expect(added.stderr).toContain("nats-server not reloaded");
    expect((await runCliToEnd(["users", "remove", "dave", "--pid-file", server.pidFile], env)).code).toBe(0);
  });
});

describe("TLS for client connections", () => {
  let server: SecureTestServer;
  let tlsDir: string;

  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), "sb-tls-"));
    await promisify(execFile)("bash", [join(ROOT, "scripts", "make-tls.sh"), tlsDir]);
    const tls = `tls {\n  cert_file: "${join(tlsDir, "server-cert.pem")}"\n  key_file: "${join(tlsDir, "server-key.pem")}"\n}`;
    server = await SecureTestServer.start({ users: ["alice"], extra: tls, tlsCa: join(tlsDir, "ca.pem") });
  });

  afterAll(async () => {
    await server?.stop();
    await rm(tlsDir, { recursive: true, force: true });
  });

  it("runs host, worker and a chat over TLS with the local CA, and says what is missing without it", async () => {
    const env = server.env({ SB_TLS_CA: join(tlsDir, "ca.pem") });
    const host = runCli(["host"], env);
    const worker = runCli(["worker", "--agents", "router,user_proxy,finance", "--classifier", "keyword"], env);
    try {
      await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
      const p = await chat({ ...env, SB_TLS_CA: "" }, ["--user", "alice", "--tls-ca", join(tlsDir, "ca.pem")], ["I need help with my budget"]);
      expect(p.events.map((e) => e["event"]), p.stderr).toEqual(["routed", "reply"]);
      const untrusted = await chat({ ...env, SB_TLS_CA: "" }, ["--user", "alice"], ["hello"]);
      expect(await untrusted.exited).toBe(1);
      expect(untrusted.stderr).toMatch(/The server uses TLS: pass the CA .* --tls-ca FILE/);
    } finally {
      await worker.stop("SIGKILL");
      await host.stop("SIGKILL");
    }
  });
});

/**
 * `switchboard up` on a machine where nothing runs yet: from a copy of the package whose nats.conf
 * differs from the shipped one only in its ports, so the test needs none of the fixed ones.
 */
describe("`switchboard up` with no server running", () => {
  let project: string;
  let port: number;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), "sb-up-"));
    port = await freePort();
    for (const dir of ["bin", "dist"]) await cp(join(ROOT, dir), join(project, dir), { recursive: true });
    await cp(join(ROOT, "package.json"), join(project, "package.json"));
    for (const dir of ["node_modules", "assets"]) await symlink(join(ROOT, dir), join(project, dir));
    const conf = (await readFile(join(ROOT, "nats.conf"), "utf8")).replace(/^port: \d+$/m, `port: ${port}`).replace(/^http: \S+$/m, "");
    await writeFile(join(project, "nats.conf"), conf);
  });

  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it("creates owner-only credentials, starts the secured server and runs the demo with them", async () => {
    const url = `nats://127.0.0.1:${port}`;
    const { SB_AUTH_DIR: _dir, SB_CREDS: _creds, ...inherited } = process.env;
    const proc = spawn(process.execPath, [join(project, "bin", "switchboard.js"), "up", "--json", "--user", "dana"], {
      env: { ...inherited, NATS_URL: url, LOG_LEVEL: "info" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const up = new CliProcess(["up"], proc);
    try {
      await up.waitFor((p) => p.stderr.includes("Switchboard is up"), 30_000, "up");
      const auth = join(project, "data", "auth");
      expect(await mode(auth)).toBe(0o700);
      for (const file of ["host.nk", "worker.nk", "admin.nk", "accounts.conf", "users/dana.nk"]) expect(await mode(join(auth, file))).toBe(0o600);
      // The server it started accepts no one without credentials.
      await expect(connect({ servers: url, timeout: 3_000 })).rejects.toBeInstanceOf(errors.AuthorizationError);
      up.write("I need help with my budget");
      up.write("END");
      up.endInput();
      expect(await up.exited, up.stderr).toBe(0);
      expect(up.events.map((e) => e["event"])).toEqual(["routed", "reply", "ended"]);
    } finally {
      await up.stop("SIGKILL");
    }
  });
});
