/**
 * Reads the routing sets the routing scripts evaluate and tune on: each directory under
 * test/fixtures/routing/ (or another root) holds profiles.json and one or more *.jsonl request
 * files; see test/fixtures/routing/README.md.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { RoutingProfile } from "../src/router/classifier.js";
import { parseLabelledRequests, type LabelledRequest } from "../src/router/evaluation.js";

export const DEFAULT_ROUTING_SETS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../test/fixtures/routing");

/** Accuracy a set must reach, in scope and out of scope. */
export type RoutingTargets = readonly [inScope: number, outOfScope: number];

/** The first workplace set, the one the defaults were first tuned on, is held to more. */
const TARGETS: Readonly<Record<string, RoutingTargets>> = { workplace: [0.95, 0.9] };
const DEFAULT_TARGETS: RoutingTargets = [0.9, 0.85];

export function routingTargets(setName: string): RoutingTargets {
  return TARGETS[setName] ?? DEFAULT_TARGETS;
}

export interface RoutingSetFile {
  readonly name: string;
  readonly requests: LabelledRequest[];
}

export interface RoutingSet {
  readonly name: string;
  readonly profiles: RoutingProfile[];
  /** The request files, by name. */
  readonly files: readonly RoutingSetFile[];
  /** Every request of the set, file after file. */
  readonly requests: LabelledRequest[];
  readonly targets: RoutingTargets;
}

/** Every set under `root`, by name; each set's request files by name too. */
export function readRoutingSets(root: string = DEFAULT_ROUTING_SETS_DIR): RoutingSet[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const dir = join(root, name);
      const profiles = JSON.parse(readFileSync(join(dir, "profiles.json"), "utf8")) as RoutingProfile[];
      const files = readdirSync(dir)
        .filter((f) => f.endsWith(".jsonl"))
        .sort()
        .map((f) => ({ name: f, requests: parseLabelledRequests(readFileSync(join(dir, f), "utf8"), f) }));
      return { name, profiles, files, requests: files.flatMap((f) => f.requests), targets: routingTargets(name) };
    });
}
