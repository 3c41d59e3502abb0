import http from 'node:http';
import { isIPv6, type AddressInfo } from 'node:net';
import type { Express } from 'express';
import { EnvSchema, type Config } from '../config';

/**
 * The API's HTTP server with the timeouts that cut slow clients: headers must arrive within
 * HTTP_HEADERS_TIMEOUT_MS and the whole request (an upload's body included) within
 * HTTP_REQUEST_TIMEOUT_MS, else Node answers 408 and closes the socket; an idle keep-alive
 * connection is closed after HTTP_KEEP_ALIVE_TIMEOUT_MS. Responses are not limited: an event
 * stream stays open as long as its client reads it.
 */
export function createHttpServer(app: Express, config: Config): http.Server {
  const server = http.createServer(
    {
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS), // Node refuses a larger one
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      // How often Node looks for requests past those limits (its default, 30 s, would let them run long).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.HTTP_HEADERS_TIMEOUT_MS / 4))),
    },
    app,
  );
  return server;
}

/**
 * Starts `server` on HOST:PORT (HOST defaults to loopback: only containers, which are reached
 * through their own network, set 0.0.0.0) and resolves with the address it really got.
 */
export function listenOnConfiguredAddress(server: http.Server, config: Pick<Config, 'HOST' | 'PORT'>): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * The URL at which a process on this machine reaches the API that `env` (HOST, PORT) starts, for the
 * scripts that announce and wait on it: an unspecified address (0.0.0.0, ::) answers on loopback of
 * its family, an IPv6 address goes in brackets, a host name stays as it is.
 */
export function localApiUrl(env: { HOST?: string; PORT?: string }): string {
  const { HOST, PORT } = EnvSchema.pick({ HOST: true, PORT: true }).parse({ HOST: env.HOST, PORT: env.PORT });
  const host = isIPv6(HOST)
    ? new URL(`http://[${HOST}]`).hostname.replace(/^\[::\]$/, '[::1]') // the URL parser writes :: for every spelling of it
    : HOST === '0.0.0.0'
      ? '127.0.0.1'
      : HOST;
  return `http://${host}:${PORT}`;
}
