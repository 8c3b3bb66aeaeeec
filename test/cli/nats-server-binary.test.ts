import { execFileSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { findNatsServer, NATS_SERVER_ENV } from "../../src/cli/nats-server-binary.js";
import { isVulnerableNatsServerVersion, SAFE_NATS_SERVER_VERSION, vulnerableServerAdvice } from "../../src/core/server-version.js";
import { natsServerBinary } from "../helpers/nats-server.js";

describe("which nats-server to run", () => {
  const saved = process.env[NATS_SERVER_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[NATS_SERVER_ENV];
    else process.env[NATS_SERVER_ENV] = saved;
  });

  it("tells the versions a chat user can crash from the fixed ones", () => {
    expect(SAFE_NATS_SERVER_VERSION).toBe("2.9.15");
    for (const v of ["2.9.10", "v2.9.14", "2.8.4", "1.4.1"]) expect(isVulnerableNatsServerVersion(v), v).toBe(true);
    for (const v of ["2.9.15", "v2.10.27", "2.11.0-RC.1", "3.0.0"]) expect(isVulnerableNatsServerVersion(v), v).toBe(false);
    // Unknown is not called vulnerable: there is nothing to act on.
    for (const v of ["", "nightly", "2.9"]) expect(isVulnerableNatsServerVersion(v), v).toBe(false);
    expect(vulnerableServerAdvice("2.9.10")).toMatch(/2\.9\.10 can be crashed by any chat user.*2\.9\.15 or newer.*SB_NATS_SERVER/);
  });

  it("runs the binary SB_NATS_SERVER names, and reads its version from it", () => {
    const binary = natsServerBinary();
    process.env[NATS_SERVER_ENV] = binary;
    const found = findNatsServer();
    const printed = execFileSync(binary, ["--version"], { encoding: "utf8" });
    expect(found?.path).toBe(binary);
    expect(printed).toContain(`v${found?.version ?? "?"}`);
    expect(found?.vulnerable).toBe(isVulnerableNatsServerVersion(found?.version ?? ""));
  });

  it("is, for the tests as set up, one that no chat user can crash", () => {
    delete process.env[NATS_SERVER_ENV];
    const found = findNatsServer();
    expect(found?.version).toBeDefined();
    expect(found?.vulnerable).toBe(false);
  });
});
