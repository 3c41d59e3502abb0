import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';

/** Fields (job id, trace id, step) attached to every log line written inside a context. */
export type LogContext = Record<string, string | number | undefined>;

const context = new AsyncLocalStorage<LogContext>();

/** Runs fn with fields that every log line written inside it carries, however deep the call. */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, fn);
}

const addContext = winston.format((info) => Object.assign(info, context.getStore()));

// JSON lines by default (what log shippers read); LOG_FORMAT=pretty for a human at a terminal.
const pretty = process.env.LOG_FORMAT === 'pretty';

export const logger = winston.createLogger({
  level: process.env.LOG_LEVEL ?? 'info',
  defaultMeta: { service: process.env.APEX_SERVICE ?? 'apex' },
  format: winston.format.combine(
    addContext(),
    winston.format.timestamp(),
    winston.format.errors({ stack: true }),
    pretty ? winston.format.combine(winston.format.colorize(), winston.format.simple()) : winston.format.json(),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
  silent: process.env.LOG_SILENT === '1',
});
