// Preloaded into the benchmark's worker processes (node --expose-gc --import …): on SIGUSR2 it
// collects garbage fully and writes the heap figures to $SB_BENCH_HEAP_FILE, so the benchmark can
// tell memory the worker holds from memory the allocator has not handed back yet (RSS).
import { writeFileSync } from "node:fs";

const file = process.env.SB_BENCH_HEAP_FILE;
if (file && typeof globalThis.gc === "function") {
  process.on("SIGUSR2", () => {
    globalThis.gc();
    globalThis.gc();
    const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
    writeFileSync(file, JSON.stringify({ at: Date.now(), heapUsed, external, arrayBuffers, rss }));
  });
}
