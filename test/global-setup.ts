import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * Tests that spawn the CLI run `bin/switchboard.js`, which loads `dist/`: build it from the current
 * sources first, so that no test runs code older than what it is meant to test.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "."], { cwd: root, stdio: "inherit" });
}
