/**
 * Evaluates the router's default classifier on every routing set in test/fixtures/routing/ (a
 * directory with profiles.json and one or more *.jsonl request files), each with the same
 * defaults, through `switchboard route --eval`'s code.
 *
 *   npx tsx scripts/eval-routing.ts [--dir DIR] [--set NAME] [--check] [--verbose] [--options JSON]
 *
 * Prints each set's accuracy in and out of scope, how many out-of-scope requests that share a
 * word with a profile (near misses) are rejected, how many requests the router would ask the user
 * about, and how many an LLM classifier would be asked about when configured (the cascade band);
 * --verbose adds the confusion matrix and misses.
 * With --check, exits 1 when a set is below its target: 95% in-scope and 90% out-of-scope for
 * the first workplace set, 90% and 85% for every other.
 */
import { parseArgs } from "node:util";
import { evaluate, formatReport, ratio } from "../src/router/evaluation.js";
import { routingDecider } from "../src/router/decide.js";
import { HybridClassifier, type HybridClassifierOptions } from "../src/router/hybrid/index.js";
import { DEFAULT_CASCADE_BAND, inCascadeBand } from "../src/router/llm-classifier.js";
import { DEFAULT_ROUTING_SETS_DIR, readRoutingSets } from "./routing-sets.js";

const { values } = parseArgs({
  options: {
    dir: { type: "string", default: DEFAULT_ROUTING_SETS_DIR },
    set: { type: "string" },
    check: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    options: { type: "string" },
  },
});

const options = values.options ? (JSON.parse(values.options) as Partial<HybridClassifierOptions>) : {};
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`.padStart(6);

let failed = false;
for (const { name: set, profiles, files, targets } of readRoutingSets(values.dir)) {
  if (values.set && values.set !== set) continue;
  const classifier = new HybridClassifier(options);
  classifier.setProfiles(profiles);
  for (const { name: file, requests } of files) {
    const report = evaluate(requests, routingDecider(classifier));
    const inAcc = ratio(report.inScopeRight, report.inScope);
    const outAcc = ratio(report.outOfScopeRight, report.outOfScope);
    const [inTarget, outTarget] = targets;
    // With an LLM classifier configured, these would be asked of the model (DEFAULT_CASCADE_BAND).
    const toModel = requests.filter((r) => inCascadeBand(classifier.classify(r.text), DEFAULT_CASCADE_BAND)).length;
    // Near misses: out-of-scope requests that share a word (stem) with some agent's profile.
    const nearMisses = requests.filter((r) => r.expect === null && classifier.explain(r.text).some((e) => e.signals.lexical > 0));
    const nearMissesRejected = nearMisses.filter((r) => classifier.classify(r.text).agent === undefined).length;
    const ok = inAcc >= inTarget && outAcc >= outTarget;
    if (!ok) failed = true;
    console.log(
      `${`${set}/${file}`.padEnd(36)} in-scope ${pct(inAcc)} (${report.inScopeRight}/${report.inScope}, target ${pct(inTarget)})  out-of-scope ${pct(outAcc)} (${report.outOfScopeRight}/${report.outOfScope}, target ${pct(outTarget)})  near misses rejected ${nearMissesRejected}/${nearMisses.length}  asked ${report.asked}  to a model ${toModel}/${requests.length}${ok ? "" : "  BELOW TARGET"}`,
    );
    if (values.verbose) console.log(`${formatReport(report, profiles.map((p) => p.type))}\n`);
  }
}
if (values.check && failed) {
  console.error("routing accuracy is below target on at least one set");
  process.exit(1);
}
