import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { Role } from "../../src/core/roles.js";
import { LearnedSource, listLearned, openRoutingBucket, recordLearned } from "../../src/router/learned-examples.js";
import { runCliToEnd } from "../helpers/cli.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects } from "../helpers/system.js";
import { twinDesks } from "../helpers/twin-desks.js";

const REQUEST = "Has the supplier invoice been paid?";

/** Learning from use with each role's own credentials on the shipped nats.conf. */
describe("routing learned from use, with least-privilege credentials", () => {
  let server: SecureTestServer;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "bob", "carol"] });
    await server.startHost();
    await server.startWorker([...builtinAgents(["router", "user_proxy"]), ...twinDesks()]);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("the router learns clarify answers with the worker's credentials, and once two users agree another user's request routes by them", async () => {
    const alice = await server.chatAs("alice");
    expect((await alice.send(REQUEST)).map((e) => e.event)).toEqual(["clarify"]);
    expect((await alice.answerClarification("desk-a"))[0]).toMatchObject({ event: "routed", agent: "desk-a" });
    await alice.close();

    const adminKv = await openRoutingBucket(await server.open(Role.Admin), subjects);
    const [learned] = await eventually(async () => {
      const list = await listLearned(adminKv, subjects);
      return list.length > 0 ? list : undefined;
    });
    expect(learned).toMatchObject({ agentType: "desk-a", text: REQUEST, source: LearnedSource.CLARIFY_ANSWER, users: ["alice"] });

    // One user's answer routes only that user's requests.
    const bob = await server.chatAs("bob");
    expect((await bob.send(REQUEST)).map((e) => e.event)).toEqual(["clarify"]);
    expect((await bob.answerClarification("desk-a"))[0]).toMatchObject({ event: "routed", agent: "desk-a" });
    await bob.close();
    await eventually(async () => (await listLearned(adminKv, subjects))[0]?.users.length === 2, 5_000, "bob's answer learned");

    const carol = await server.chatAs("carol");
    expect((await carol.send(REQUEST))[0]).toMatchObject({ event: "routed", agent: "desk-a", intent: "learned" });
    await carol.close();
  });

  it("lets the admin list learned examples but not change them; the host's credentials can", async () => {
    const adminKv = await openRoutingBucket(await server.open(Role.Admin), subjects);
    await expect(recordLearned(adminKv, subjects, { agentType: "desk-b", text: "sneaky", source: LearnedSource.OPERATOR, detail: "" })).rejects.toThrow(/permission|timeout/i);

    const env = server.env();
    const denied = await runCliToEnd(["admin", "routing", "add", "desk-b", "Who pays the courier?", "--creds", `${server.store.dir}/admin.nk`], env);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/needs the host.s credentials|permission/i);
    const asUser = await runCliToEnd(["admin", "routing", "--creds", `${server.store.dir}/users/alice.nk`], env);
    expect(asUser.code).toBe(1);
    expect(asUser.stderr).toMatch(/permission denied .*KV_routing|permission denied .*routing: reading learned routing needs the admin credentials/);
    const listed = await runCliToEnd(["admin", "routing", "--json"], env);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { agentType: string }[]).map((e) => e.agentType)).toEqual(["desk-a"]);

    const added = await runCliToEnd(["admin", "routing", "add", "desk-b", "Who pays the courier?"], env);
    expect(added.code).toBe(0);
    const forgot = await runCliToEnd(["admin", "routing", "forget", "desk-a"], env);
    expect(forgot).toMatchObject({ code: 0, stdout: "forgot 1 learned example" });
  });
});
