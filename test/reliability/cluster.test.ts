import { isMessage } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { ChatSession } from "../../src/cli/chat-session.js";
import { AgentReplySchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import type { HostClient } from "../../src/host/client.js";
import { openChat } from "../helpers/chat.js";
import { TestNatsCluster } from "../helpers/nats-cluster.js";
import { watchResponses, type SeenEvent } from "../helpers/responses.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";

// nats-server 2.9's own leader elections vary with the machine's load, far beyond anything the
// code under test decides; a scenario that loses that race runs once more in a fresh cluster.
describe("a 3-node NATS cluster losing a node", { retry: 1 }, () => {
  let cluster: TestNatsCluster;
  let sys: TestSystem;
  let jsm: JetStreamManager;
  let admin: HostClient;
  const nodeNamed = (name: string | undefined) => cluster.nodes.find((_, k) => `n${k + 1}` === name);

  // A fresh cluster for each test: nats-server 2.9.10 can crash when a killed node rejoins.
  beforeEach(async () => {
    cluster = await TestNatsCluster.start(3);
    sys = TestSystem.on(cluster.url);
    // JetStream needs a meta leader before the host can create anything.
    await eventually(async () => {
      await sys.startHost({ replicas: 3 });
      return true;
    }, 30_000, "host started on the cluster");
    jsm = await jetstreamManager(await sys.connect());
    admin = await sys.hostClient();
    // A delivery in flight from the node that dies is lost on the wire and comes again after the
    // ack wait: keep it short, as RELIABILITY.md recommends for a cluster.
    const consumer = { ackWaitMs: 5_000 };
    await sys.startWorker(["router", "user_proxy", "hr", "finance"], { consumer });
    await sys.startWorker(["hr", "finance"], { consumer });
  }, 60_000);
  afterEach(async () => {
    await sys?.close();
    await cluster?.stop();
  });

  /**
   * Concurrent conversations of `turns` messages with `kill` run before user 0's third message;
   * every turn must end in a reply, with exactly one reply per turn on the wire.
   */
  async function converse(users: readonly string[], turns: number, kill: () => Promise<void>): Promise<ChatSession[]> {
    const chats = await Promise.all(users.map((u) => openChat(sys, u, 30_000)));
    const wire = new Map<string, SeenEvent[]>();
    for (const u of users) wire.set(u, await watchResponses(await sys.connect(), u));
    let killed = false;
    const results = await Promise.all(
      chats.map(async (chat, i) => {
        const finals: string[] = [];
        for (let t = 0; t < turns; t++) {
          if (i === 0 && t === 2 && !killed) {
            killed = true;
            await kill();
          }
          const events = await chat.send(t === 0 ? (i % 2 ? "Talk to HR please" : "I need help with my budget") : `turn ${t}`);
          finals.push(events.at(-1)?.event ?? "none");
        }
        return finals;
      }),
    );
    expect(killed).toBe(true);
    for (const finals of results) expect(finals).toEqual(Array(turns).fill("reply"));
    await new Promise((r) => setTimeout(r, 1_000));
    for (const [user, seen] of wire) {
      // Distinct replies: a publish retried during an election carries the same id and may reach
      // plain subscribers twice (the stream keeps it once; clients drop a repeated id).
      const perTurn = new Map<string, Set<string>>();
      for (const e of seen) if (isMessage(e.message, AgentReplySchema)) perTurn.set(e.message.turnId, (perTurn.get(e.message.turnId) ?? new Set()).add(e.id));
      // A plain subscriber on the node that died misses what is published while it reconnects (the
      // chats read those answers back from the stream), so the wire can show fewer turns, never a
      // turn answered twice.
      expect([...perTurn.values()].every((ids) => ids.size === 1), `replies per turn on the wire for ${user}`).toBe(true);
      expect(perTurn.size, `turns answered on the wire for ${user}`).toBeGreaterThan(0);
    }
    return chats;
  }

  /**
   * The host's session records catch up with what the chats saw within 20 s of the sessions bucket
   * being writable again (its own leader election is nats-server's, and on a loaded machine takes
   * longer than that by itself).
   */
  async function expectTranscriptsComplete(chats: readonly ChatSession[], turns: number): Promise<void> {
    await eventually(async () => (await jsm.streams.info(`KV_${subjects.sessionsBucket}`)).cluster?.leader, 30_000, "sessions bucket with a leader");
    for (const chat of chats) {
      await eventually(async () => {
        const s = await admin.session(chat.sessionId, { timeoutMs: 2_000 });
        return s?.turns === turns && s.transcript.length === 2 * turns ? s : undefined;
      }, 20_000, `transcript of ${chat.sessionId} complete`);
    }
  }

  it("keeps conversations going when the event stream's leader dies: no accepted message is lost", async () => {
    const turns = 6;
    const chats = await converse(["ann", "ben", "cat", "dan"], turns, async () => {
      // Take down the node leading the event stream: the hardest case.
      const leader = (await jsm.streams.info(subjects.eventStream)).cluster?.leader;
      await (nodeNamed(leader) ?? cluster.nodes[0]!).kill();
    });
    await expectTranscriptsComplete(chats, turns);
    // Leader elections take most of the time this needs on an idle 2-core machine; leave room
    // for the test files running beside it.
  }, 90_000);

  it("keeps the host's session view current when the node its projector reads from dies", async () => {
    const turns = 4;
    let stalledNode: string | undefined;
    const chats = await converse(["eve", "fay", "gus"], turns, async () => {
      const consumers = await jsm.consumers.list(subjects.eventStream).next();
      const projector = consumers.find((c) => c.name.startsWith("host_projector_"));
      stalledNode = projector?.cluster?.leader;
      expect(stalledNode).toBeTruthy();
      await nodeNamed(stalledNode)!.kill();
    });
    await expectTranscriptsComplete(chats, turns);
    // The projector now reads through a consumer on a live node.
    const consumers = await jsm.consumers.list(subjects.eventStream).next();
    const projector = consumers.find((c) => c.name.startsWith("host_projector_") && c.cluster?.leader !== stalledNode);
    expect(projector).toBeDefined();
  }, 90_000);
});
