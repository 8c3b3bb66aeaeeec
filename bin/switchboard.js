#!/usr/bin/env node
// Said before anything loads: on an older Node.js the failure would otherwise come later, as an
// obscure error from a dependency.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`switchboard: warning: Node.js ${process.version} is not supported; use 22.12 or newer\n`);
}
await import("../dist/cli/main.js");
