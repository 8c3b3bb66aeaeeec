export * from "./tracing.js";
export * from "./metrics.js";
export * from "./sdk.js";
export * from "./discovery.js";
export * from "./delivery.js";
export * from "./routing.js";
