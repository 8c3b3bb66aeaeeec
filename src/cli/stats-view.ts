import type { SystemStats } from "./system-stats.js";
import { formatTable, sanitizeForTerminal } from "./terminal.js";

const ms = (n: number) => (n >= 100 ? String(Math.round(n)) : n.toFixed(1));

/** `switchboard admin stats`: agent types, then workers, then the router's decisions. */
export function renderStats(stats: SystemStats): string {
  const types = formatTable(
    ["AGENT TYPE", "WORKERS", "TURNS", "FAILED", "IN FLIGHT", "PENDING", "REDELIVERED", "DEAD LETTERS", "P50 MS", "P95 MS", "MAX MS"],
    stats.agentTypes.map((a) => [a.agentType, String(a.workers), String(a.turns), String(a.failures), String(a.inFlight), String(a.pending), String(a.redeliveries), String(a.deadLetters), ms(a.latency.p50Ms), ms(a.latency.p95Ms), ms(a.latency.maxMs)]),
  );
  const workers = formatTable(
    ["WORKER", "HOST", "VERSION", "AGENT TYPES", "TURNS", "IN FLIGHT", "STARTED"],
    stats.workers.map((w) => [w.workerId, w.hostname, w.version, w.agentTypes.map((a) => a.agentType).join(","), String(sum(w.agentTypes.map((a) => a.turns))), String(sum(w.agentTypes.map((a) => a.inFlight))), w.started]),
  );
  return [types, "", workers, "", routingLine(stats), deadLetterLine(stats)].join("\n");
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function sum(ns: readonly number[]): number {
  return ns.reduce((a, b) => a + b, 0);
}

function routingLine(stats: SystemStats): string {
  const r = stats.routing;
  return `routing: routed ${r["routed"] ?? 0}, clarify ${r["clarify"] ?? 0}, no agent ${r["no_agent"] ?? 0}, hand-off ${r["handoff"] ?? 0}`;
}

function deadLetterLine(stats: SystemStats): string {
  const stored = stats.deadLettersStored === undefined ? "unknown (no host answered)" : String(stats.deadLettersStored);
  return `dead letters stored: ${stored}; ${count(stats.hosts.length, "host")}, ${count(stats.workers.length, "worker")}`;
}

/** A fixed-width cell: text cut to `width`, figures right-aligned. */
function cell(value: string | number, width: number): string {
  const text = sanitizeForTerminal(String(value)).replace(/\s+/g, " ");
  const cut = text.length > width ? `${text.slice(0, width - 1)}…` : text;
  return typeof value === "number" || /^(-|[0-9.]+)$/.test(cut) ? cut.padStart(width) : cut.padEnd(width);
}

function row(cells: readonly [string | number, number][]): string {
  return cells.map(([v, w]) => cell(v, w)).join(" ").trimEnd();
}

/** A heading row: names over text columns left, over figures right, like the figures below them. */
function heading(cells: readonly [string, number, "left" | "right"][]): string {
  return cells.map(([v, w, align]) => (align === "left" ? v.padEnd(w) : v.padStart(w))).join(" ").trimEnd();
}

/** Turns per second per agent type between two readings. */
function rates(now: SystemStats, before: SystemStats | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!before) return out;
  const seconds = (Date.parse(now.at) - Date.parse(before.at)) / 1000;
  if (seconds <= 0) return out;
  for (const a of now.agentTypes) {
    const prev = before.agentTypes.find((b) => b.agentType === a.agentType);
    out.set(a.agentType, Math.max(0, a.turns - (prev?.turns ?? 0)) / seconds);
  }
  return out;
}

/** Width of the live view: it fits a terminal of 80 columns. */
export const WATCH_WIDTH = 80;

/** One screen of `switchboard admin watch`; every line at most {@link WATCH_WIDTH} characters. */
export function renderWatch(now: SystemStats, before: SystemStats | undefined, intervalMs: number): string[] {
  const perSecond = rates(now, before);
  const time = now.at.slice(11, 19);
  const lines = [
    `Switchboard ${time} UTC · ${count(now.workers.length, "worker")} · ${count(now.hosts.length, "host")} · every ${intervalMs / 1000} s · Ctrl-C quits`,
    "",
    heading([["AGENT TYPE", 14, "left"], ["WRK", 3, "right"], ["TURNS", 7, "right"], ["TURN/S", 6, "right"], ["FAIL", 5, "right"], ["INFL", 4, "right"], ["PEND", 6, "right"], ["REDEL", 5, "right"], ["DEAD", 4, "right"], ["P50MS", 6, "right"], ["P95MS", 6, "right"]]),
    ...now.agentTypes.map((a) =>
      row([
        [a.agentType, 14],
        [a.workers, 3],
        [a.turns, 7],
        [perSecond.has(a.agentType) ? (perSecond.get(a.agentType) ?? 0).toFixed(1) : "-", 6],
        [a.failures, 5],
        [a.inFlight, 4],
        [a.pending, 6],
        [a.redeliveries, 5],
        [a.deadLetters, 4],
        [ms(a.latency.p50Ms), 6],
        [ms(a.latency.p95Ms), 6],
      ]),
    ),
    "",
    heading([["WORKER", 22, "left"], ["HOST", 16, "left"], ["AGENT TYPES", 26, "left"], ["TURNS", 7, "right"], ["INFL", 4, "right"]]),
    ...now.workers.map((w) =>
      row([
        [w.workerId, 22],
        [w.hostname, 16],
        [w.agentTypes.map((a) => a.agentType).join(","), 26],
        [sum(w.agentTypes.map((a) => a.turns)), 7],
        [sum(w.agentTypes.map((a) => a.inFlight)), 4],
      ]),
    ),
    "",
    routingLine(now),
    deadLetterLine(now),
  ];
  return lines.map((l) => (l.length > WATCH_WIDTH ? `${l.slice(0, WATCH_WIDTH - 1)}…` : l));
}
