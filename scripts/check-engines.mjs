#!/usr/bin/env node
// Checks the Node.js versions Switchboard says it supports (package.json "engines"):
//  - the Node.js running this is one of them (CI runs the suite on a supported version);
//  - every installed package Switchboard depends on at run time accepts the oldest of them, so
//    the range we state is one our dependencies state too.
// Plain Node, no dependencies: it runs before anything else is trusted.
import { readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const ours = pkg.engines?.node;
if (!ours) fail("package.json states no engines.node");

/** "22.12.0" → [22, 12, 0]; "22.x" and "22" → [22, 0, 0]. */
function parse(version) {
  const parts = version.replace(/^v/, "").split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : 0));
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}
function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
/** Whether `version` satisfies an npm range of the forms packages use for engines.node. */
export function satisfies(version, range) {
  const v = parse(version);
  return range.split("||").some((set) => {
    const comparators = set.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, "$1").split(/\s+/).filter(Boolean);
    if (comparators.length === 0 || (comparators.length === 1 && (comparators[0] === "*" || comparators[0] === "x"))) return true;
    return comparators.every((c) => {
      const m = /^(>=|<=|>|<|=|\^|~)?(.*)$/.exec(c);
      const op = m[1] ?? "";
      const raw = m[2];
      const bound = parse(raw);
      const c0 = compare(v, bound);
      const wildcard = raw.split(".").length < 3 || /x|\*/.test(raw);
      switch (op) {
        case ">=": return c0 >= 0;
        case ">": return c0 > 0;
        case "<=": return c0 <= 0;
        case "<": return c0 < 0;
        case "^": return c0 >= 0 && v[0] === bound[0];
        case "~": return c0 >= 0 && v[0] === bound[0] && v[1] === bound[1];
        default: return wildcard ? v[0] === bound[0] : c0 === 0;
      }
    });
  });
}
/** The oldest version a ">=X.Y.Z" (or "^X.Y.Z || >=…") range admits: its first lower bound. */
function floor(range) {
  const m = /(?:>=|\^|~)?\s*(\d+(?:\.\d+){0,2})/.exec(range);
  if (!m) fail(`cannot read the lowest version of engines.node "${range}"`);
  return parse(m[1]).join(".");
}

function fail(message) {
  console.error(`check-engines: ${message}`);
  process.exit(1);
}

const running = process.versions.node;
if (!satisfies(running, ours)) fail(`this is Node.js ${running}, and package.json supports ${ours}`);

if (process.argv.includes("--running-only")) {
  console.log(`check-engines: Node.js ${running} is supported (${ours})`);
  process.exit(0);
}

const oldest = floor(ours);
const problems = [];
const seen = new Set();
function visit(name, from) {
  if (seen.has(name)) return;
  seen.add(name);
  let dir = from;
  let file;
  for (;;) {
    file = join(dir, "node_modules", name, "package.json");
    if (existsSync(file) || dirname(dir) === dir) break;
    dir = dirname(dir);
  }
  if (!existsSync(file)) return; // optional dependency for another platform
  const dep = JSON.parse(readFileSync(file, "utf8"));
  const range = dep.engines?.node;
  if (range && !satisfies(oldest, range)) problems.push(`${name} ${dep.version} requires Node.js ${range}`);
  for (const next of Object.keys(dep.dependencies ?? {})) visit(next, dirname(file));
}
for (const name of Object.keys(pkg.dependencies ?? {})) visit(name, root);
if (problems.length > 0) fail(`package.json supports Node.js ${ours}, but at ${oldest}:\n  ${problems.join("\n  ")}`);
console.log(`check-engines: Node.js ${running} is supported (${ours}); the run-time dependencies accept ${oldest}`);
