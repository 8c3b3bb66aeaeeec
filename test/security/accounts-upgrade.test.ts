import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { ChatSession } from "../../src/cli/chat-session.js";
import { credentialsPath, publicKey, readCredentialsFile } from "../../src/core/credentials.js";
import { Role, SERVICE_ROLES } from "../../src/core/roles.js";
import { HostClient } from "../../src/host/client.js";
import { runCliToEnd } from "../helpers/cli.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects, testLogger } from "../helpers/system.js";

/** What `auth init` wrote before chat users had accounts of their own: everyone in SWITCHBOARD. */
const SINGLE_ACCOUNT = fileURLToPath(new URL("../fixtures/auth/single-account.conf", import.meta.url));

/**
 * A server running an earlier version's single-account `accounts.conf`, with a conversation in
 * its stream and buckets, is brought to the current layout the documented way (`switchboard auth
 * init`, then `switchboard auth reload`) without a restart, and keeps everything.
 */
describe("upgrading a running server from the single-account accounts file, then rotating keys live", () => {
  const logger = testLogger();
  let server: SecureTestServer;
  let jsm: JetStreamManager;
  let template: string;

  async function chat(user: string): Promise<ChatSession> {
    const session = new ChatSession({ nc: await server.open(Role.Client, user), subjects, user, logger, replyTimeoutMs: 10_000 });
    await session.start();
    return session;
  }

  beforeAll(async () => {
    template = await readFile(SINGLE_ACCOUNT, "utf8");
    server = await SecureTestServer.start({
      users: ["alice"],
      accountsFile: (store) => {
        let text = template;
        for (const role of SERVICE_ROLES) text = text.replace(`{{${role}}}`, publicKey(readCredentialsFile(credentialsPath(store.dir, role))));
        return text.replace("{{alice}}", publicKey(readCredentialsFile(credentialsPath(store.dir, Role.Client, "alice"))));
      },
    });
    const hostNc = await server.open(Role.Host);
    await server.startHost({ nc: hostNc, workerTtlMs: 5_000 });
    await server.startWorker(builtinAgents(["router", "user_proxy", "hr", "finance"]), { consumer: { maxDeliver: 2, ackWaitMs: 2_000 } });
    jsm = await jetstreamManager(hostNc);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("moves the chat users into accounts of their own on reload, keeping the stream, the buckets and the sessions", async () => {
    // Before: alice is in the Switchboard account (the old layout), and chats.
    expect(await readFile(server.store.accountsFile, "utf8")).not.toContain("USER_alice");
    const before = await chat("alice");
    expect((await before.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
    const admin = new HostClient(await server.open(Role.Admin), subjects);
    await eventually(async () => ((await admin.session(before.sessionId))?.transcript.length ?? 0) >= 2, 10_000, "the session recorded");
    const { state } = await jsm.streams.info(subjects.eventStream);
    const agents = (await admin.agents()).map((a) => a.spec?.type).sort();

    const env = server.env();
    const init = await runCliToEnd(["auth", "init"], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain("updated the roles' permissions");
    expect(await readFile(server.store.accountsFile, "utf8")).toContain('"USER_alice" {');
    const reload = await runCliToEnd(["auth", "reload", "--pid-file", server.pidFile], env);
    expect(reload.stdout, reload.stderr).toMatch(/nats-server \d+ reloaded its configuration/);

    // After: the same stream (nothing lost, same first message), the same registry and sessions,
    // and alice chats from her own account, continuing where she was.
    const after = await eventually(async () => {
      const session = await chat("alice").catch(() => undefined);
      if (!session) return undefined;
      const events = await session.send("I need help with my budget").catch(() => []);
      if (events[0]?.event !== "routed") {
        await session.close();
        return undefined;
      }
      return session;
    }, 20_000, "alice chatting after the reload");
    const now = (await jsm.streams.info(subjects.eventStream)).state;
    expect(now.first_seq).toBe(state.first_seq);
    expect(now.messages).toBeGreaterThan(state.messages);
    expect((await admin.agents()).map((a) => a.spec?.type).sort()).toEqual(agents);
    expect((await admin.session(before.sessionId))?.user).toBe("alice");
    const lastAnswer = await (await jetstreamManager(await server.open(Role.Client, "alice"), { checkAPI: false })).direct.getMessage(subjects.eventStream, {
      last_by_subj: subjects.topic({ type: "response", source: { user: "alice", session: after.sessionId } }),
    });
    expect(lastAnswer?.subject).toBe(`sb.topic.response.alice.${after.sessionId}`);
    await after.close();
    await before.close().catch(() => undefined);
  });

  it("rotates a chat user's key live: the old connection is closed and the new file chats", async () => {
    const old = await server.open(Role.Client, "alice");
    let dropped = false;
    const watching = (async () => {
      for await (const s of old.status()) if (s.type === "disconnect") dropped = true;
    })();
    const rotated = await runCliToEnd(["users", "rotate", "alice", "--pid-file", server.pidFile], server.env());
    expect(rotated.code, rotated.stderr).toBe(0);
    await eventually(() => dropped || old.isClosed(), 10_000, "the old key disconnected");
    await old.close();
    await watching;
    const session = await eventually(() => chat("alice").catch(() => undefined), 10_000, "alice connected with her new key");
    expect((await session.send("Talk to HR please")).map((e) => e.event)).toEqual(["routed", "reply"]);
    await session.close();
  });

  it("rotates a service role's key live: the old admin connection is closed and the new file asks", async () => {
    const old = await server.open(Role.Admin);
    let dropped = false;
    const watching = (async () => {
      for await (const s of old.status()) if (s.type === "disconnect") dropped = true;
    })();
    const rotated = await runCliToEnd(["auth", "rotate", "admin", "--pid-file", server.pidFile], server.env());
    expect(rotated.code, rotated.stderr).toBe(0);
    await eventually(() => dropped || old.isClosed(), 10_000, "the old key disconnected");
    await old.close();
    await watching;
    const admin = await eventually(() => server.open(Role.Admin).catch(() => undefined), 10_000, "admin connected with the new key");
    expect((await new HostClient(admin, subjects).agents()).length).toBeGreaterThan(0);
  });
});
