import { describe, expect, it } from "vitest";
import { configFrom, parse } from "../../src/cli/options.js";
import { runCliToEnd } from "../helpers/cli.js";

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

  it("refuses a log level pino does not know, from the flag or LOG_LEVEL, before doing anything", async () => {
    expect(() => configFrom(parse("host", ["--log-level", "loud"], {}).values)).toThrow(/--log-level \(LOG_LEVEL\) must be one of trace, debug, info, warn, error, fatal, silent, got "loud"/);
    // The chat defaults to warn but takes LOG_LEVEL like every command.
    const chat = await runCliToEnd(["chat", "--json", "--port", "1"], { LOG_LEVEL: "bogus" });
    expect(chat.code).toBe(2);
    expect(chat.stderr).toContain('must be one of trace, debug, info, warn, error, fatal, silent, got "bogus"');
  });
});
