import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { openChat } from "../helpers/chat.js";
import { TestNatsCluster } from "../helpers/nats-cluster.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";

describe("a 3-node NATS cluster losing a node", () => {
  let cluster: TestNatsCluster;
  let sys: TestSystem;
  beforeAll(async () => {
    cluster = await TestNatsCluster.start(3);
    sys = TestSystem.on(cluster.url);
  });
  afterAll(async () => {
    await sys.close();
    await cluster.stop();
  });

  it("keeps conversations going with replicated streams and buckets: no accepted message is lost", async () => {
    // JetStream needs a meta leader before the host can create anything.
    await eventually(async () => {
      await sys.startHost({ replicas: 3 });
      return true;
    }, 30_000, "host started on the cluster");
    const jsm = await jetstreamManager(await sys.connect());
    const info = await jsm.streams.info(subjects.eventStream);
    expect(info.config.num_replicas).toBe(3);
    // A delivery in flight from the node that dies is lost on the wire and comes again after the
    // ack wait: keep it short, as RELIABILITY.md recommends for a cluster.
    const consumer = { ackWaitMs: 5_000 };
    await sys.startWorker(["router", "user_proxy", "hr", "finance"], { consumer });
    await sys.startWorker(["hr", "finance"], { consumer });

    const users = ["ann", "ben", "cat", "dan"];
    const chats = await Promise.all(users.map((u) => openChat(sys, u, 30_000)));
    const turns = 6;
    let killed = false;
    const results = await Promise.all(
      chats.map(async (chat, i) => {
        const finals: string[] = [];
        for (let t = 0; t < turns; t++) {
          if (i === 0 && t === 2 && !killed) {
            killed = true;
            // Take down the node leading the event stream: the hardest case.
            const leader = (await jsm.streams.info(subjects.eventStream)).cluster?.leader;
            const victim = cluster.nodes.find((_, k) => `n${k + 1}` === leader) ?? cluster.nodes[0]!;
            await victim.kill();
          }
          const events = await chat.send(t === 0 ? (i % 2 ? "Talk to HR please" : "I need help with my budget") : `turn ${t}`);
          finals.push(events.at(-1)?.event ?? "none");
        }
        return finals;
      }),
    );
    expect(killed).toBe(true);
    for (const finals of results) expect(finals).toEqual(Array(turns).fill("reply"));
    // Leader elections take most of the 15-25 s this needs on an idle 2-core machine; leave room
    // for the test files running beside it.
  }, 60_000);
});
