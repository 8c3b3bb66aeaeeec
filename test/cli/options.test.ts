import { describe, expect, it } from "vitest";
import { configFrom, parse } from "../../src/cli/options.js";

describe("common options", () => {
  it("takes --port on every command as the local server's URL", () => {
    for (const command of ["worker", "chat", "admin", "host"]) {
      const { values } = parse(command, ["--port", "14222"], {});
      expect(configFrom(values).natsUrl, command).toBe("nats://127.0.0.1:14222");
    }
  });

  it("keeps --nats when no port is given", () => {
    const { values } = parse("worker", ["--nats", "nats://10.0.0.5:4333"], {});
    expect(configFrom(values).natsUrl).toBe("nats://10.0.0.5:4333");
  });
});
