import { describe, expect, it } from "vitest";
import { renderStats, renderWatch, WATCH_WIDTH } from "../../src/cli/stats-view.js";
import type { AgentTypeView, SystemStats } from "../../src/cli/system-stats.js";

function agentType(name: string, turns: number): AgentTypeView {
  return { agentType: name, workers: 12, turns, failures: 3, inFlight: 64, redeliveries: 12_345, deadLetters: 7, pending: 1_234_567, ackPending: 9, latency: { count: turns, meanMs: 12.5, p50Ms: 10, p95Ms: 2_500, maxMs: 31_234.4 } };
}

function stats(at: string, turns: number): SystemStats {
  const types = [agentType("a-very-long-agent-type-name-for-the-accounts-payable-desk", turns), agentType("hr", turns * 2)];
  return {
    at,
    agentTypes: types,
    workers: [
      {
        workerId: "w-0123456789abcdef0123456789abcdef",
        serviceId: "S1",
        version: "0.1.0",
        hostname: "a-rather-long-host-name.example.internal",
        started: at,
        agentTypes: types.map((t) => ({ ...t, latency: { ...t.latency, buckets: [] } })),
        routing: {},
      },
    ],
    hosts: [],
    routing: { routed: 123_456, clarify: 12, no_agent: 3, handoff: 1 },
    deadLettersStored: undefined,
  };
}

describe("stats views", () => {
  it("fits every line of the live view in 80 columns, whatever the names and figures, with rates since the last screen", () => {
    const before = stats("2026-01-01T12:00:00.000Z", 1_000_000);
    const now = stats("2026-01-01T12:00:02.000Z", 1_000_500);
    const lines = renderWatch(now, before, 2_000);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(WATCH_WIDTH);
    // 500 turns in 2 s for the first type, 1000 for the second.
    expect(lines.find((l) => l.startsWith("a-very-long-a"))).toMatch(/^a-very-long-a… +12 +1000500 +250\.0 /);
    expect(lines.find((l) => l.startsWith("hr "))).toMatch(/^hr +12 +2001000 +500\.0 /);
    expect(lines).toContain("dead letters stored: unknown (no host answered); 0 hosts, 1 worker");
  });

  it("shows a dash for rates on the first screen", () => {
    const [, , , first] = renderWatch(stats("2026-01-01T12:00:00.000Z", 10), undefined, 2_000);
    expect(first).toMatch(/^a-very-long-a… +12 +10 +- /);
  });

  it("prints the whole names and figures in the stats table", () => {
    const text = renderStats(stats("2026-01-01T12:00:00.000Z", 5));
    expect(text).toMatch(/^a-very-long-agent-type-name-for-the-accounts-payable-desk\s+12\s+5\s+3\s+64\s+1234567\s+12345\s+7\s+10\.0\s+2500\s+31234/m);
    expect(text).toContain("routing: routed 123456, clarify 12, no agent 3, hand-off 1");
  });
});
