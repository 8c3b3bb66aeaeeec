import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AgentsFileError, loadAgentsFile, parseAgentsFile } from "../../../src/agents/llm/agents-file.js";

const YAML = `
defaults:
  url: http://127.0.0.1:9/v1
  model: small
  apiKeyEnv: TEST_MODEL_KEY
  timeoutMs: 5000
agents:
  - type: hr
    description: Human resources
    keywords: [hr, leave]
    examples: ["How many vacation days do I have left?"]
    model:
      systemPrompt: You are the HR desk.
      temperature: 0.2
  - type: travel
    name: travel_desk
    description: Business travel
    model:
      model: bigger
      maxTokens: 256
      historyMessages: 4
`;

const env = { TEST_MODEL_KEY: "sk-test" };

describe("agents files", () => {
  it("reads YAML with defaults merged into each agent's model and the key from the named variable", () => {
    const [hr, travel] = parseAgentsFile("agents.yaml", YAML, env);
    expect(hr).toMatchObject({
      type: "hr",
      name: "hr_agent",
      description: "Human resources",
      keywords: ["hr", "leave"],
      examples: ["How many vacation days do I have left?"],
      model: { url: "http://127.0.0.1:9/v1", model: "small", apiKeyEnv: "TEST_MODEL_KEY", apiKey: "sk-test", systemPrompt: "You are the HR desk.", temperature: 0.2, timeoutMs: 5000, historyMessages: 20 },
    });
    expect(travel).toMatchObject({ name: "travel_desk", keywords: [], model: { model: "bigger", maxTokens: 256, historyMessages: 4, systemPrompt: "" } });
  });

  it("reads the same from JSON, by extension, from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "sb-agents-"));
    const file = join(dir, "agents.json");
    writeFileSync(file, JSON.stringify({ agents: [{ type: "finance", description: "Money", model: { url: "https://models.example/v1", model: "m" } }] }));
    expect(loadAgentsFile(file, {})).toMatchObject([{ type: "finance", model: { url: "https://models.example/v1", apiKey: undefined, timeoutMs: 25_000 } }]);
  });

  const cases: [string, string, RegExp][] = [
    ["no agents", "agents: []", /^a\.yaml: "agents" must be a non-empty list$/],
    ["an unknown top-level setting", "agent: []", /unknown setting "agent"/],
    ["a bad type", "agents: [{ type: 'a b', description: d, model: { url: 'http://x', model: m } }]", /^a\.yaml: agents\[0\]: "type" must be/],
    ["no description", "agents: [{ type: hr, model: { url: 'http://x', model: m } }]", /^a\.yaml: agents\[0\] \(hr\): "description" is required/],
    ["no url", "agents: [{ type: hr, description: d, model: { model: m } }]", /agents\[0\] \(hr\): model\.url must be an http\(s\) URL/],
    ["no model name", "agents: [{ type: hr, description: d, model: { url: 'http://x' } }]", /model\.model .* is required/],
    ["a temperature out of range", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m, temperature: 5 } }]", /model\.temperature must be a number from 0 to 2, got 5/],
    ["a fractional time-out", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m, timeoutMs: 1.5 } }]", /model\.timeoutMs must be an integer/],
    ["a misspelt model setting", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m, systemprompt: hi } }]", /agents\[0\] \(hr\) model: unknown setting "systemprompt"/],
    ["an unset key variable", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m, apiKeyEnv: NOPE_KEY } }]", /environment variable NOPE_KEY \(model\.apiKeyEnv\) is not set/],
    ["a key instead of a variable name", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m, apiKeyEnv: 'sk-123' } }]", /model\.apiKeyEnv must name an environment variable/],
    ["a type twice", "agents: [{ type: hr, description: d, model: { url: 'http://x', model: m } }, { type: hr, description: e, model: { url: 'http://x', model: m } }]", /agents\[1\] \(hr\): agent type "hr" is defined twice/],
    ["broken YAML", "agents: [", /^a\.yaml: not valid YAML/],
    ["an unclosed YAML list, saying where, without a dangling colon", "agents:\n  - type: hr\n    description: [unclosed\n", /^a\.yaml: not valid YAML: .* at line \d+, column \d+$/],
  ];
  for (const [what, text, message] of cases) {
    it(`rejects ${what}, naming the file and the entry`, () => {
      const err = (() => {
        try {
          parseAgentsFile("a.yaml", text, {});
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(AgentsFileError);
      expect(err).toMatchObject({ code: "config" });
      expect((err as Error).message).toMatch(message);
    });
  }

  it("loads the shipped example as it is: hr and finance with the built-in profiles", async () => {
    const { BUILTIN_PROFILES } = await import("../../../src/agents/builtin.js");
    const example = fileURLToPath(new URL("../../../examples/llm-agents/agents.yaml", import.meta.url));
    const agents = loadAgentsFile(example, {});
    expect(agents.map((a) => a.type)).toEqual(["hr", "finance"]);
    for (const agent of agents) {
      const builtin = BUILTIN_PROFILES.find((p) => p.type === agent.type);
      expect({ description: agent.description, keywords: agent.keywords, examples: agent.examples }).toEqual({ description: builtin?.description, keywords: builtin?.keywords, examples: builtin?.examples });
      expect(agent.model.systemPrompt).not.toBe("");
      expect(agent.model.timeoutMs).toBeLessThan(30_000);
    }
  });

  it("names the file it cannot read", () => {
    expect(() => loadAgentsFile("/nonexistent/agents.yaml")).toThrow(/^\/nonexistent\/agents\.yaml: cannot read the agents file/);
  });
});
