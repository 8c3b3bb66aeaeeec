export { BUILTIN_AGENT_TYPES, BUILTIN_PROFILES, builtinAgents, type BuiltinOptions } from "./builtin.js";
export { containsEndWord } from "./end-word.js";
export { TaskAgentType } from "./task-agent.js";
export { UserProxyAgentType, USER_PROXY_AGENT_TYPE } from "./user-proxy.js";
