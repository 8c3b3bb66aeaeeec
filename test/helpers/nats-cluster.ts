import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestNatsServer } from "./nats-server.js";
import { freePort } from "./ports.js";

/** A local JetStream cluster of real nats-server processes, joined by routes. */
export class TestNatsCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: TestNatsServer[],
  ) {}

  /** All client URLs, comma-separated, as NATS_URL takes them. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  /**
   * Starts the nodes; a free port can be taken by another process before a node binds it (tests
   * run in parallel), so a start that fails that way is tried again on other ports.
   */
  static async start(size = 3, attempts = 3): Promise<TestNatsCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await TestNatsCluster.startOnce(size);
      } catch (err) {
        if (attempt >= attempts || !/address already in use/.test(String(err))) throw err;
      }
    }
  }

  private static async startOnce(size: number): Promise<TestNatsCluster> {
    const dir = await mkdtemp(join(tmpdir(), "sb-cluster-"));
    const clientPorts = await Promise.all(Array.from({ length: size }, freePort));
    const routePorts = await Promise.all(Array.from({ length: size }, freePort));
    const started: TestNatsServer[] = [];
    const results = await Promise.allSettled(
      clientPorts.map(async (port, i) => {
        const nodeDir = join(dir, `n${i + 1}`);
        await mkdir(nodeDir, { recursive: true });
        const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
        return TestNatsServer.start({
          port,
          dir: nodeDir,
          extraConfig: [`server_name: n${i + 1}`, `cluster { name: sbtest, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.join(", ")}] }`].join("\n"),
        }).then((node) => {
          started.push(node);
          return node;
        });
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await Promise.all(started.map((n) => n.stop()));
      await rm(dir, { recursive: true, force: true });
      throw failed.reason;
    }
    return new TestNatsCluster(dir, results.map((r) => (r as PromiseFulfilledResult<TestNatsServer>).value));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
