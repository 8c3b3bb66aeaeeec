/**
 * Makes text from the network safe to print: removes ANSI escape sequences (CSI, OSC such as
 * titles and hyperlinks, DCS and the other string sequences, in their 7-bit and 8-bit forms),
 * control characters (except newline and tab) and bidirectional overrides, so an agent's reply
 * cannot move the cursor, repaint, retitle the user's terminal or disguise what it says.
 */
export function sanitizeForTerminal(text: string): string {
  return text
    .replace(/(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]/g, "")
    .replace(/(?:\u001b[\]PX^_]|[\u0090\u0098\u009d\u009e\u009f])[\s\S]*?(?:\u0007|\u001b\\|\u009c|$)/g, "")
    .replace(/\u001b[ -/]*[0-~]?/g, "")
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
}

/**
 * One JSON line for a program to read. JSON.stringify escapes C0 controls but leaves C1 controls
 * (U+0080-U+009F, which some terminals obey), line separators and bidirectional controls (which
 * reorder what a terminal or editor shows) as they are; escape those too, so a JSON line shown
 * anywhere is inert and reads as it is. The value read back is unchanged.
 */
export function jsonLine(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Renders rows as an aligned plain-text table. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [headers, ...rows].map((r) => r.map((c) => sanitizeForTerminal(c).replace(/\s+/g, " ")));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(cells[0] ?? []), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** "3 s ago", "2 min ago" for a past instant. */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
