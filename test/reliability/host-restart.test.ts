import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { RegisterWorkerRequestSchema, SessionState } from "../../src/gen/switchboard/v1/registry_pb.js";
import { openChat } from "../helpers/chat.js";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { eventually, TestSystem } from "../helpers/system.js";

describe("hosts killed and restarted", () => {
  let sys: TestSystem;
  const procs: CliProcess[] = [];
  const start = async (args: string[]) => {
    const p = runCli(args, { NATS_URL: sys.url, SB_HEARTBEAT_MS: "300", SB_WORKER_TTL_MS: "2000" });
    procs.push(p);
    await p.waitFor((x) => x.stderr.includes("host.started") || x.stderr.includes("worker.started"), 20_000, `${args[0]} start`);
    return p;
  };

  beforeAll(async () => {
    sys = await TestSystem.start();
  });
  afterAll(async () => {
    for (const p of procs) await p.stop("SIGKILL");
    await sys.close();
  });

  it("keeps chats working while no host runs, and the restarted host has everything", async () => {
    const host = await start(["host"]);
    const worker = await start(["worker"]);
    const admin = await sys.hostClient();
    const chat = await openChat(sys, "alice");
    await chat.send("I need help with my budget");
    const before = chat.sessionId;

    // A worker that heartbeats on its own schedule: its next heartbeat is due a second after the
    // host comes back.
    const financeSpec = (await admin.agents()).find((a) => a.spec?.type === "finance")?.spec;
    await admin.register(create(RegisterWorkerRequestSchema, { workerId: "w-paused", hostname: "elsewhere", pid: 1, agentTypes: financeSpec ? [financeSpec] : [] }));
    await host.stop("SIGKILL");
    const killedAt = Date.now();
    // The host is not on the message path.
    expect((await chat.send("still there?")).map((e) => e.event)).toEqual(["reply"]);
    await chat.send("END");
    expect((await chat.send("Talk to HR please")).map((e) => e.event)).toEqual(["routed", "reply"]);
    const during = chat.sessionId;
    await expect(admin.agents({ timeoutMs: 1_000 })).rejects.toThrow(/no Switchboard host is running/);

    // Down for longer than the worker TTL: the worker's last recorded heartbeat is older than it.
    await new Promise((r) => setTimeout(r, Math.max(0, 3_000 - (Date.now() - killedAt))));
    const restarted = await start(["host"]);
    // Registry survived, and the worker was not expired for the heartbeats nobody recorded.
    const agents = await admin.agents();
    expect(agents.filter((a) => a.available).map((a) => a.spec?.type)).toEqual(["finance", "hr", "router", "user_proxy"]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await admin.heartbeat("w-paused")).toBe(true);
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await admin.workers()).filter((w) => w.workerId !== "w-paused")).toHaveLength(1);
    // Not expired and registered again in between either.
    expect(restarted.stderr).not.toContain('"event":"worker.expired"');
    expect(worker.stderr).not.toContain('"event":"worker.reregister"');
    // Sessions: the one from before, and the events missed while down were caught up.
    const first = await eventually(async () => {
      const s = await admin.session(before);
      return s?.state === SessionState.ENDED ? s : undefined;
    }, 5_000, "first session ended");
    expect(first.turns).toBe(3);
    const second = await eventually(async () => admin.session(during), 5_000, "session from while the host was down");
    expect(second).toMatchObject({ agentType: "hr", state: SessionState.ROUTED, turns: 1 });
  });

  it("stays consistent with two hosts, and one of them killed", async () => {
    const h1 = await start(["host"]);
    await start(["host"]);
    const admin = await sys.hostClient();
    const chats = await Promise.all(["bob", "carol", "dave"].map((u) => openChat(sys, u)));
    const conversations = chats.map(async (chat, i) => {
      for (let t = 0; t < 4; t++) {
        if (i === 0 && t === 2) await h1.stop("SIGKILL");
        const events = await chat.send(t === 0 ? "a question about my budget" : `turn ${t}`);
        expect(events.at(-1)?.event).toBe("reply");
      }
      return chat.sessionId;
    });
    const sessions = await Promise.all(conversations);
    for (const id of sessions) {
      const s = await eventually(async () => {
        const rec = await admin.session(id);
        return rec?.turns === 4 && rec.transcript.length === 8 ? rec : undefined;
      }, 10_000, `session ${id} complete`);
      expect(s.agentType).toBe("finance");
    }
  });
});
