import { readRoutingFile } from "./profiles-file.js";
import { ConfigError, errorMessage } from "../core/errors.js";

/**
 * One line of a labelled request set: the request, the agent type it belongs to (null when no
 * agent should take it), and other agent types that would also be acceptable.
 */
export interface LabelledRequest {
  readonly text: string;
  readonly expect: string | null;
  readonly also?: readonly string[];
}

/** What the router would do with one request. `agent` is undefined when nothing fits. */
export interface RoutingDecision {
  readonly agent: string | undefined;
  /** The router would ask the user to choose, offering these agents (the chosen one among them). */
  readonly candidates?: readonly string[];
}

export interface EvaluationMiss {
  readonly text: string;
  readonly expect: string | null;
  readonly got: string | null;
  readonly intent: string;
}

export interface EvaluationReport {
  readonly inScope: number;
  readonly inScopeRight: number;
  readonly outOfScope: number;
  readonly outOfScopeRight: number;
  /** Requests for which the router would ask the user rather than route. */
  readonly asked: number;
  /** confusion[expected][got], "none" standing for no agent. */
  readonly confusion: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly misses: readonly EvaluationMiss[];
}

export const NONE = "none";

/** Parses a JSON-lines request set; `source` names it in error messages. */
export function parseLabelledRequests(text: string, source: string): LabelledRequest[] {
  const requests: LabelledRequest[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new ConfigError(`${source}:${i + 1} is not valid JSON: ${errorMessage(err)}`);
    }
    const { text: t, expect, also } = (raw ?? {}) as Record<string, unknown>;
    if (typeof t !== "string") throw new ConfigError(`${source}:${i + 1}: "text" must be a string`);
    if (expect !== null && typeof expect !== "string") throw new ConfigError(`${source}:${i + 1}: "expect" must be an agent type or null`);
    if (also !== undefined && (!Array.isArray(also) || also.some((a) => typeof a !== "string"))) throw new ConfigError(`${source}:${i + 1}: "also" must be an array of agent types`);
    requests.push({ text: t, expect, ...(also ? { also: also as string[] } : {}) });
  });
  return requests;
}

export async function readLabelledRequests(path: string): Promise<LabelledRequest[]> {
  return parseLabelledRequests(await readRoutingFile(path, "request set"), path);
}

/** True when the decision is right for the request: the expected agent, an accepted one, or none. */
export function isRight(request: LabelledRequest, agent: string | undefined): boolean {
  if (request.expect === null) return agent === undefined;
  return agent === request.expect || (agent !== undefined && (request.also ?? []).includes(agent));
}

/**
 * Scores a router's decisions on a labelled set. A request the router would ask about counts as
 * routed to the agent it would have chosen: the figures say how often the first choice is right.
 */
export function evaluate(requests: readonly LabelledRequest[], decide: (text: string) => RoutingDecision & { readonly intent?: string }): EvaluationReport {
  let inScope = 0;
  let inScopeRight = 0;
  let outOfScope = 0;
  let outOfScopeRight = 0;
  let asked = 0;
  const confusion: Record<string, Record<string, number>> = {};
  const misses: EvaluationMiss[] = [];
  for (const request of requests) {
    const decision = decide(request.text);
    const right = isRight(request, decision.agent);
    if ((decision.candidates?.length ?? 0) > 1) asked++;
    const expected = request.expect ?? NONE;
    const got = decision.agent ?? NONE;
    const row = (confusion[expected] ??= {});
    row[got] = (row[got] ?? 0) + 1;
    if (request.expect === null) {
      outOfScope++;
      if (right) outOfScopeRight++;
    } else {
      inScope++;
      if (right) inScopeRight++;
    }
    if (!right) misses.push({ text: request.text, expect: request.expect, got: decision.agent ?? null, intent: decision.intent ?? "" });
  }
  return { inScope, inScopeRight, outOfScope, outOfScopeRight, asked, confusion, misses };
}

export function ratio(right: number, total: number): number {
  return total === 0 ? 1 : right / total;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The report as text for a person: accuracy, the confusion matrix, then every miss. */
export function formatReport(report: EvaluationReport, agentTypes: readonly string[]): string {
  const lines = [
    report.inScope === 0
      ? "in-scope:     none in the set (lines with an agent type as \"expect\")"
      : `in-scope:     ${report.inScopeRight}/${report.inScope} routed to the right agent (${pct(ratio(report.inScopeRight, report.inScope))})`,
    report.outOfScope === 0
      ? 'out-of-scope: none in the set (add lines with "expect": null to measure rejection)'
      : `out-of-scope: ${report.outOfScopeRight}/${report.outOfScope} rejected (${pct(ratio(report.outOfScopeRight, report.outOfScope))})`,
    `asked:        ${report.asked} would get a "which one?" question first`,
    "",
    "confusion (rows: expected, columns: routed to)",
  ];
  const labels = [...agentTypes, NONE];
  const extra = Object.values(report.confusion).flatMap((row) => Object.keys(row)).filter((k) => !labels.includes(k));
  const columns = [...labels, ...new Set(extra)];
  const rows = columns.filter((r) => report.confusion[r] !== undefined);
  const width = Math.max(8, ...columns.map((c) => c.length)) + 1;
  lines.push(["".padEnd(width), ...columns.map((c) => c.padStart(width))].join(""));
  for (const r of rows) lines.push([r.padEnd(width), ...columns.map((c) => String(report.confusion[r]?.[c] ?? 0).padStart(width))].join(""));
  if (report.misses.length > 0) {
    lines.push("", "misses:");
    for (const m of report.misses) lines.push(`  expected ${m.expect ?? NONE}, got ${m.got ?? NONE}  ${JSON.stringify(m.text)}  [${m.intent}]`);
  }
  return lines.join("\n");
}
