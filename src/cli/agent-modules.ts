import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isAgentDefinition } from "../agents/define-agent.js";
import type { AnyAgentDefinition } from "../agents/define-agent-runtime.js";
import { ConfigError, errorMessage } from "../core/errors.js";
import type { AgentTypeDefinition } from "../worker/agent.js";

/** An agent found in a user's module, and where, for error messages. */
export interface ModuleAgent {
  readonly type: string;
  readonly definition: AnyAgentDefinition;
  /** The module as given on the command line. */
  readonly module: string;
  /** `default`, a named export, or `name[2]` for an element of an exported array. */
  readonly exportName: string;
}

/** A low-level definition, recognised by shape: it comes from code outside our type checks. */
function isAgentTypeDefinition(value: unknown): value is AgentTypeDefinition {
  if (typeof value !== "object" || value === null) return false;
  const { spec, create } = value as { spec?: unknown; create?: unknown };
  return typeof create === "function" && typeof spec === "object" && spec !== null && typeof (spec as { type?: unknown }).type === "string";
}

function typeOf(definition: AnyAgentDefinition): string {
  return isAgentDefinition(definition) ? definition.type : definition.spec.type;
}

/**
 * Where a `--module` argument points: paths (`./agents.js`, `/abs/agents.js`, or `agents.js` when
 * that file exists) from the working directory, other bare names (`my-agents`) as packages
 * installed there, not beside the CLI.
 */
export function resolveModule(spec: string, cwd: string): string {
  // `agents.js` or `lib/agents.js` as typed at a shell means the file when there is one.
  if (spec.startsWith(".") || isAbsolute(spec) || existsSync(resolve(cwd, spec))) return pathToFileURL(resolve(cwd, spec)).href;
  try {
    return pathToFileURL(createRequire(join(cwd, "package.json")).resolve(spec)).href;
  } catch (err) {
    throw new ConfigError(`cannot find agent module "${spec}": no such file in ${cwd} and no such package installed there (${errorMessage(err).split("\n")[0]}); give the file's path, such as ./agents.js`);
  }
}

/** The agent definitions a module exports: default or named, single or in an array. */
export function agentsOf(moduleNamespace: Readonly<Record<string, unknown>>, spec: string): ModuleAgent[] {
  const found: ModuleAgent[] = [];
  const seen = new Set<unknown>();
  const consider = (value: unknown, exportName: string) => {
    if (seen.has(value)) return; // `export default travel` next to `export const travel`
    if (isAgentDefinition(value) || isAgentTypeDefinition(value)) {
      seen.add(value);
      found.push({ type: typeOf(value), definition: value, module: spec, exportName });
    }
  };
  // Named exports first: `export default travel` beside `export const travel` is reported as `travel`.
  const entries = Object.entries(moduleNamespace).sort(([a], [b]) => Number(a === "default") - Number(b === "default"));
  for (const [name, value] of entries) {
    if (Array.isArray(value)) value.forEach((item, i) => consider(item, `${name}[${i}]`));
    else consider(value, name);
  }
  if (found.length === 0) {
    const names = Object.keys(moduleNamespace);
    throw new ConfigError(
      `agent module ${spec} exports no agent definition (exports found: ${names.length ? names.join(", ") : "none"}); export the result of defineAgent(...) from "switchboard", as the default export or a named one`,
    );
  }
  return found;
}

/**
 * Where a syntax error is, which a failed import does not say: Node's own syntax check of the
 * file names the line and shows it (nothing when the error is in a module it imports).
 */
function syntaxErrorLocation(err: unknown, url: string): string {
  if (!(err instanceof SyntaxError) || !url.startsWith("file:")) return "";
  const check = spawnSync(process.execPath, ["--check", fileURLToPath(url)], { encoding: "utf8", timeout: 10_000 });
  if (check.status === 0 || typeof check.stderr !== "string") return "";
  const [where, code, caret] = check.stderr.split("\n");
  return where && /:\d+$/.test(where) ? `\n  at ${where}\n  ${code ?? ""}\n  ${caret ?? ""}` : "";
}

/** What to do about the usual ways a module fails to load. */
function hintFor(err: unknown): string {
  const message = errorMessage(err);
  if (/Cannot use import statement outside a module|Unexpected token 'export'/.test(message)) {
    return `; agent modules are ES modules: set "type": "module" in the nearest package.json (npm pkg set type=module) or name the file .mjs`;
  }
  if (/Cannot find (package|module) 'switchboard'/.test(message)) return "; install the package where the module is: npm install switchboard";
  return "";
}

/**
 * Imports each `--module` and collects its agents. Errors name the module and the export: a module
 * that does not load, one that exports no agent, and two agents of the same type (with each other
 * or with a built-in type in `reserved`).
 */
export async function loadAgentModules(specs: readonly string[], options: { cwd: string; reserved: readonly string[] }): Promise<ModuleAgent[]> {
  const all: ModuleAgent[] = [];
  for (const spec of specs) {
    const url = resolveModule(spec, options.cwd);
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(url)) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`cannot load agent module ${spec} (${url}): ${errorMessage(err)}${syntaxErrorLocation(err, url)}${hintFor(err)}`);
    }
    for (const agent of agentsOf(namespace, spec)) {
      const where = `${agent.module} (export ${agent.exportName})`;
      if (options.reserved.includes(agent.type)) {
        throw new ConfigError(`agent type "${agent.type}" from ${where} clashes with the built-in agent type of that name; give the agent another type`);
      }
      const twin = all.find((a) => a.type === agent.type);
      if (twin) {
        throw new ConfigError(`agent type "${agent.type}" from ${where} clashes with the same type from ${twin.module} (export ${twin.exportName}); each agent type may be defined once`);
      }
      all.push(agent);
    }
  }
  return all;
}
