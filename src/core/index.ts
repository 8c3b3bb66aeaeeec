export * from "./errors.js";
export * from "./ids.js";
export * from "./subjects.js";
export * from "./codec.js";
export * from "./config.js";
export * from "./logging.js";
export * from "./connection.js";
export * from "./request.js";
