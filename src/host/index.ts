export { Host, type HostOptions } from "./host.js";
export { HostClient, type HostCallOptions } from "./client.js";
export { Registry } from "./registry.js";
export { applyEvent, TRANSCRIPT_LIMIT, type Applied, type EventPosition, type SessionChange } from "./session-state.js";
export { DEFAULT_INFRASTRUCTURE, type InfrastructureOptions } from "./infrastructure.js";
export { RegistryView } from "./registry-view.js";
