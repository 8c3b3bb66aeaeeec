import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openChat } from "../helpers/chat.js";
import { runCli, runCliToEnd } from "../helpers/cli.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";
import { forgetLearned, LearnedSource, openRoutingBucket, recordLearned } from "../../src/router/learned-examples.js";
import { twinDesks } from "../helpers/twin-desks.js";

const PROFILES = fileURLToPath(new URL("../fixtures/routing/workplace/profiles.json", import.meta.url));
const CLINIC = fileURLToPath(new URL("../fixtures/clinic-profiles.json", import.meta.url));

describe("switchboard route", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sb-route-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints one JSON line per stdin line with the agent, its score and every agent's score", async () => {
    const p = runCli(["route", "--profiles", PROFILES, "--json"]);
    p.write("Where do I send receipts from my trip?");
    p.write("");
    p.write("What's the capital of Australia?");
    p.write("Talk to HR please");
    p.endInput();
    expect(await p.exited).toBe(0);
    const lines = p.events;
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ text: "Where do I send receipts from my trip?", agent: "finance", ambiguous: false });
    expect(lines[0]?.["score"]).toBeGreaterThan(0.5);
    expect(Object.keys(lines[0]?.["scores"] as object).sort()).toEqual(["finance", "hr"]);
    expect(lines[1]).toMatchObject({ agent: null });
    expect(lines[1]?.["score"]).toBeLessThan(0.5);
    expect(lines[2]).toMatchObject({ agent: "hr", intent: "keyword:hr" });
  });

  it("explains each decision on one line for a person, from the arguments", async () => {
    const { code, stdout } = await runCliToEnd(["route", "--profiles", PROFILES, "Where do I send receipts from my trip?", "How do I add my spouse to the health insurance plan?"]);
    expect(code).toBe(0);
    const lines = stdout.split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^finance\s+0\.\d{3}\s+"Where do I send receipts from my trip\?"\s+\[.*threshold 0\.50; runner-up hr 0\.\d{3}; finance signals: keyword -, lexical/);
    expect(lines[1]).toMatch(/ambiguous: the router would ask the user to choose between hr, finance/);
  });

  it("evaluates profiles on a labelled request set with --eval: accuracy, confusion matrix and misses", async () => {
    const set = join(dir, "set.jsonl");
    writeFileSync(
      set,
      [
        { text: "How many vacation days do I have left?", expect: "hr" },
        { text: "Has the supplier invoice been paid?", expect: "finance" },
        { text: "What is the capital of Australia?", expect: null },
        { text: "Talk to HR please", expect: "finance", also: ["hr"] },
        { text: "I need to submit my travel expenses", expect: "hr" },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n"),
    );
    const text = await runCliToEnd(["route", "--profiles", PROFILES, "--eval", set]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("in-scope:     3/4 routed to the right agent (75.0%)");
    expect(text.stdout).toContain("out-of-scope: 1/1 rejected (100.0%)");
    expect(text.stdout).toMatch(/\n\s+hr\s+finance\s+none\n/);
    expect(text.stdout).toContain('expected hr, got finance  "I need to submit my travel expenses"');

    const json = await runCliToEnd(["route", "--profiles", PROFILES, "--eval", set, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      inScope: 4,
      inScopeRight: 3,
      outOfScope: 1,
      outOfScopeRight: 1,
      confusion: { hr: { hr: 1, finance: 1 }, finance: { finance: 1, hr: 1 }, none: { none: 1 } },
      misses: [{ text: "I need to submit my travel expenses", expect: "hr", got: "finance" }],
    });

    const bad = await runCliToEnd(["route", "--profiles", PROFILES, "--eval", join(dir, "missing.jsonl")]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/cannot read request set/);

    const empty = join(dir, "empty.jsonl");
    writeFileSync(empty, "\n\n");
    expect(await runCliToEnd(["route", "--profiles", PROFILES, "--eval", empty])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no labelled requests in .*empty\.jsonl/) as unknown });
  });

  it("warns about labels that name no agent type of the profiles, and shows them in the matrix", async () => {
    const set = join(dir, "typo.jsonl");
    writeFileSync(set, [{ text: "Has the supplier invoice been paid?", expect: "fiannce" }, { text: "Talk to HR please", expect: "hr", also: ["hrr"] }].map((l) => JSON.stringify(l)).join("\n"));
    const { code, stdout, stderr } = await runCliToEnd(["route", "--profiles", PROFILES, "--eval", set]);
    expect(code).toBe(0);
    expect(stderr).toContain('warning: ' + set + ' names agent type "fiannce", which no profile has (known: hr, finance)');
    expect(stderr).toContain('names agent type "hrr"');
    expect(stdout).toMatch(/^fiannce\s+0\s+1\b/m);
    // A set without out-of-scope lines says so, rather than "0/0 rejected (100.0%)".
    expect(stdout).toContain('out-of-scope: none in the set (add lines with "expect": null to measure rejection)');
  });

  it("says at a terminal that it reads messages from the keyboard", async () => {
    const t = TerminalCli.start(["route", "--profiles", PROFILES], {});
    try {
      await t.waitFor("type one message a line to see where it would go");
      t.type(`Talk to HR please${Keys.Enter}`);
      await t.waitFor("keyword:hr");
    } finally {
      await t.stop();
    }
  });

  it("documents its options, and the worker's classifier options", async () => {
    const route = await runCliToEnd(["route", "--help"]);
    expect(route.code).toBe(0);
    expect(route.stdout).toContain("Usage: switchboard route [--profiles FILE] [--json] [TEXT...]");
    expect(route.stdout).toMatch(/--profiles <file>[\s\S]*--json[\s\S]*--nats <url>/);
    const worker = await runCliToEnd(["worker", "--help"]);
    expect(worker.stdout).toMatch(/--classifier <kind>[\s\S]*--llm-url <url>[\s\S]*--llm-model <name>[\s\S]*SB_LLM_API_KEY/);
    const main = await runCliToEnd(["--help"]);
    expect(main.stdout).toMatch(/^\s+route\s+show where the router would send messages/m);
  });

  it("fails clearly on a missing or invalid profiles file", async () => {
    const missing = await runCliToEnd(["route", "--profiles", join(dir, "nope.json"), "hello"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read profiles file .*nope\.json/);

    const notJson = join(dir, "bad.json");
    writeFileSync(notJson, "{ not json");
    const bad = await runCliToEnd(["route", "--profiles", notJson, "hello"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not valid JSON/);

    const wrongShape = join(dir, "shape.json");
    writeFileSync(wrongShape, JSON.stringify([{ type: "hr", description: "HR", keywords: "hr" }]));
    const shape = await runCliToEnd(["route", "--profiles", wrongShape, "hello"]);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toMatch(/profile 1 \(hr\): "keywords" must be an array of strings/);

    // An editor's byte-order mark is not an error; a misspelt field and an empty description are.
    const misspelt = join(dir, "bom.json");
    writeFileSync(misspelt, `\uFEFF${JSON.stringify([{ type: "hr", description: "People", keyword: ["hr"] }])}`);
    const typo = await runCliToEnd(["route", "--profiles", misspelt, "hello"]);
    expect(typo).toMatchObject({ code: 2, stderr: expect.stringContaining('profile 1: unknown field "keyword" (did you mean "keywords"?)') as unknown });
    const blank = join(dir, "blank.json");
    writeFileSync(blank, JSON.stringify([{ type: "hr", description: " " }]));
    expect((await runCliToEnd(["route", "--profiles", blank, "hello"])).stderr).toMatch(/profile 1 \(hr\): "description" must be a sentence/);
  });

  it("reads the profiles of an agents file, without the model's API key it never uses", async () => {
    const file = join(dir, "agents.yaml");
    writeFileSync(file, ["defaults: { url: 'http://127.0.0.1:9/v1', model: m, apiKeyEnv: SB_TEST_UNSET_MODEL_KEY }", "agents:", "  - { type: travel, description: 'Business travel: flights and hotels', keywords: [flight] }"].join("\n"));
    const { code, stdout } = await runCliToEnd(["route", "--json", "--profiles", file, "flight"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ agent: "travel", intent: "keyword:flight" });
  });
});

describe("routing from the command line against a running system", () => {
  let sys: TestSystem;
  let env: Record<string, string>;
  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    env = { NATS_URL: sys.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" };
  });
  afterAll(async () => {
    await sys.close();
  });

  it("routes against the live registry when no profiles file is given", async () => {
    const worker = await sys.startWorker(["user_proxy", "hr", "finance"]);
    const { code, stdout } = await runCliToEnd(["route", "--json", "I need help with my budget"], env);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ agent: "finance", intent: "keyword:budget" });

    // With the examples learned from use that every user's routing shares, as the router has them.
    const kv = await openRoutingBucket(await sys.connect(), subjects);
    const request = "Who refills the stapler cupboard on the third floor?";
    expect(JSON.parse((await runCliToEnd(["route", "--json", request], env)).stdout)).toMatchObject({ agent: null });
    await recordLearned(kv, subjects, { agentType: "hr", text: request, source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["u1"] });
    expect(JSON.parse((await runCliToEnd(["route", "--json", request], env)).stdout)).toMatchObject({ agent: null });
    await recordLearned(kv, subjects, { agentType: "hr", text: request, source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["u1", "u2"] });
    expect(JSON.parse((await runCliToEnd(["route", "--json", request], env)).stdout)).toMatchObject({ agent: "hr" });
    await forgetLearned(kv, subjects, "hr");
    await worker.close();
  });

  it("lets `switchboard chat --json` answer a clarification with the next line", async () => {
    const infra = await sys.startWorker(["router", "user_proxy"]);
    const desks = await sys.startWorker(twinDesks());
    const chat = runCli(["chat", "--user", "carol", "--json"], env);
    for (const line of ["Has the supplier invoice been paid?", "7", "desk-b", "thanks, END"]) chat.write(line);
    chat.endInput();
    expect(await chat.exited).toBe(0);
    const events = chat.events;
    expect(events.map((e) => e["event"])).toEqual(["clarify", "error", "clarify", "routed", "reply", "ended"]);
    expect(events[0]).toMatchObject({ session: expect.any(String), question: expect.stringContaining("desk-") });
    expect((events[0]?.["options"] as { agent: string }[]).map((o) => o.agent).sort()).toEqual(["desk-a", "desk-b"]);
    expect(events[1]).toMatchObject({ code: "invalid_choice", message: expect.stringContaining("is not one of the options") });
    // Every event carries when it came and the turn it belongs to: the question's, until answered.
    for (const e of events.slice(0, 5)) expect(e).toMatchObject({ ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), turn: events[0]?.["turn"] });
    expect(events[3]).toMatchObject({ agent: "desk-b", intent: "user_choice" });
    expect(events[4]).toMatchObject({ agent: "desk-b", content: "Hello from desk-b_agent! You said: Has the supplier invoice been paid?" });
    expect(events[5]).toMatchObject({ agent: "desk-b", reason: "user_request" });

    // Another user (carol's answer routes her requests now): "none" or END declines the question,
    // and the next line is a new message.
    const declining = runCli(["chat", "--user", "fern", "--json"], env);
    // END before any conversation is not sent: there is nothing to end.
    for (const line of ["END", "Has the supplier invoice been paid?", "none", "Has the supplier invoice been paid?", "END", "Is invoice 42 paid?", "none"]) declining.write(line);
    declining.endInput();
    expect(await declining.exited).toBe(0);
    expect(declining.events.map((e) => e["event"])).toEqual(["error", "clarify", "clarify", "clarify"]);
    expect(declining.events[0]).toMatchObject({ code: "no_conversation", message: expect.stringContaining("no conversation to end") });
    await desks.close();
    await infra.close();
  });

  it("runs a worker's router with the LLM classifier and falls back when the model is unreachable", async () => {
    const agents = await sys.startWorker(["user_proxy", "hr", "finance"]);
    // Port 9 (discard) on loopback: nothing answers, as when the model server is down.
    const worker = runCli(["worker", "--agents", "router", "--classifier", "llm", "--llm-url", "http://127.0.0.1:9/v1", "--llm-model", "test-model"], env);
    try {
      await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
      expect(worker.stderr).toMatch(/"event":"router.started".*"classifier":"LlmClassifier"/);
      // The previous test closed the only router: until the host has seen this one registered, it
      // rightly tells the chat that a message to the router is queued.
      const admin = await sys.hostClient();
      await eventually(async () => (await admin.agents()).find((a) => a.spec?.type === "router")?.available === true, 10_000, "router available");
      const chat = await openChat(sys, "dave");
      // A request the hybrid classifier is unsure of, so the model is asked (and does not answer).
      const events = await chat.send("three people are waiting outside for their interview");
      expect(events.filter((e) => e.event !== "queued").map((e) => e.event)).toEqual(["routed", "reply"]);
      expect(events.find((e) => e.event === "routed")).toMatchObject({ agent: "hr", intent: "fallback:related:interview" });
    } finally {
      expect(await worker.stop()).toBe(0);
      await agents.close();
    }
  });

  it("runs a worker's router without the everyday background when told, and refuses a background file it cannot read", async () => {
    const request = "I want to book time off for my holiday";
    // The bundled everyday requests explain this one as well as hr does.
    expect(JSON.parse((await runCliToEnd(["route", "--json", "--profiles", PROFILES, request])).stdout)).toMatchObject({ agent: null });
    expect(JSON.parse((await runCliToEnd(["route", "--json", "--profiles", PROFILES, "--everyday-background", "off", request])).stdout)).toMatchObject({ agent: "hr" });
    const bad = await runCliToEnd(["worker", "--agents", "router", "--everyday-background", join(tmpdir(), "sb-no-such-background.txt")], env);
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--everyday-background: cannot read .*sb-no-such-background\.txt/) as unknown });

    const agents = await sys.startWorker(["user_proxy", "hr", "finance"]);
    const worker = runCli(["worker", "--agents", "router"], { ...env, SB_EVERYDAY_BACKGROUND: "off" });
    try {
      await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
      const admin = await sys.hostClient();
      await eventually(async () => (await admin.agents()).find((a) => a.spec?.type === "router")?.available === true, 10_000, "router available");
      const chat = await openChat(sys, "erin");
      const events = await chat.send(request);
      expect(events.find((e) => e.event === "routed")).toMatchObject({ agent: "hr" });
    } finally {
      expect(await worker.stop()).toBe(0);
      await agents.close();
    }
  });

  it("credits the agent serving a request's service-desk domain, and runs without the domains or with a file of one's own when told", async () => {
    const request = "can my husband pick up my tablets for me";
    const explained = await runCliToEnd(["route", "--profiles", CLINIC, request]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(/^pharmacy\s+0\.\d{3}\s.*\[service:[^;]+;.*reads as "[^"]+", which pharmacy serves: \+\d\.\d\d evidence/);
    expect(JSON.parse((await runCliToEnd(["route", "--json", "--profiles", CLINIC, "--service-domains", "off", request])).stdout)).toMatchObject({ agent: null });
    expect(JSON.parse((await runCliToEnd(["route", "--json", "--profiles", CLINIC, request], { SB_SERVICE_DOMAINS: "off" })).stdout)).toMatchObject({ agent: null });

    const ownDir = mkdtempSync(join(tmpdir(), "sb-services-"));
    const own = join(ownDir, "service-requests.txt");
    // Several domains: an agent serves the ones its profile reads as and no other agent's does.
    writeFileSync(
      own,
      [
        "## medicines collected by someone else",
        "my wife will fetch my pills on Friday",
        "can my son get my tablets from the counter",
        "my carer picks up my medication",
        "## moving a visit",
        "can I come on Tuesday instead of Monday",
        "I have to push my slot with the nurse back a week",
        "## questions about a bill",
        "why does the statement show two charges",
        "I paid this amount already last month",
      ].join("\n"),
    );
    const withOwn = await runCliToEnd(["route", "--json", "--profiles", CLINIC, "--service-domains", own, request]);
    rmSync(ownDir, { recursive: true, force: true });
    expect(JSON.parse(withOwn.stdout)).toMatchObject({ agent: "pharmacy", intent: "service:medicines collected by someone else" });

    const missing = await runCliToEnd(["worker", "--agents", "router", "--service-domains", join(tmpdir(), "sb-no-such-services.txt")], env);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/--service-domains: cannot read .*sb-no-such-services\.txt/) as unknown });
    const keyword = await runCliToEnd(["worker", "--agents", "router", "--classifier", "keyword", "--service-domains", "off"], env);
    expect(keyword).toMatchObject({ code: 2, stderr: expect.stringMatching(/--service-domains needs --classifier hybrid or llm/) as unknown });
    for (const command of ["route", "worker"]) expect((await runCliToEnd([command, "--help"])).stdout).toMatch(/--service-domains <on\|off\|file>[\s\S]*SB_SERVICE_DOMAINS/);
  });

  it("refuses an unknown classifier and an llm classifier without a model", async () => {
    const unknown = await runCliToEnd(["worker", "--classifier", "magic"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--classifier must be one of hybrid, keyword, llm/);
    const incomplete = await runCliToEnd(["worker", "--classifier", "llm", "--llm-url", "http://127.0.0.1:9/v1"], { ...env, SB_LLM_MODEL: "" });
    expect(incomplete.code).toBe(2);
    expect(incomplete.stderr).toMatch(/needs --llm-model \(or SB_LLM_MODEL\)/);
  });
});
