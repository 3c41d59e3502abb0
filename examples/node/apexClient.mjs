// A small client for the APEX Portraits API on Node.js >= 20 built-ins only (fetch, FormData, Blob).
// The API's address and key come from the environment: APEX_API_URL (default http://localhost:8001)
// and APEX_API_KEY (leave it unset when the API runs open). portrait.mjs and generation.mjs use it.
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const API_URL = (process.env.APEX_API_URL ?? 'http://localhost:8001').replace(/\/$/, '');
const API_KEY = process.env.APEX_API_KEY ?? '';
const TERMINAL = new Set(['completed', 'failed_validation', 'failed', 'cancelled']);

/** The API's error shape: {"error": {code, message, field}}. */
export class ApiError extends Error {
  constructor(status, body) {
    super(`${status} ${body?.error?.code ?? ''}: ${body?.error?.message ?? JSON.stringify(body)}`);
    this.status = status;
    this.code = body?.error?.code;
    this.field = body?.error?.field;
  }
}

/** One request; an API path carries the key, a full URL (a presigned image URL) does not need it. */
async function send(method, path, { body, headers = {} } = {}) {
  const isApi = !/^https?:/.test(path);
  const response = await fetch(isApi ? API_URL + path : path, {
    method,
    body,
    headers: { ...headers, ...(isApi && API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {}) },
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response;
}

/** A JSON request (`json` becomes the body); returns the decoded answer. */
export async function call(method, path, { json, form, headers = {} } = {}) {
  const body = json === undefined ? form : JSON.stringify(json);
  const type = json === undefined ? {} : { 'Content-Type': 'application/json' };
  return (await send(method, path, { body, headers: { ...headers, ...type } })).json();
}

/**
 * Yields {event, data} from a Server-Sent Events stream until the terminal status; a dropped
 * connection is resumed with Last-Event-ID, so nothing is missed or seen twice.
 */
export async function* followEvents(path) {
  let lastId;
  for (;;) {
    try {
      const response = await send('GET', path, { headers: { Accept: 'text/event-stream', ...(lastId ? { 'Last-Event-ID': lastId } : {}) } });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) lastId = line.slice(3).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trim());
          }
          if (data.length === 0) continue;
          const payload = JSON.parse(data.join('\n'));
          yield { event, data: payload };
          if (event === 'status' && TERMINAL.has(payload.status)) return;
        }
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      console.log(`event stream interrupted (${err.message}); resuming`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

/** Saves an image (an API path or a presigned URL) as `target` + its type's extension. */
export async function download(path, target) {
  const response = await send('GET', path);
  const type = response.headers.get('content-type') ?? '';
  const file = `${target}.${type.split('/')[1] || 'bin'}`;
  const bytes = Buffer.from(await response.arrayBuffer());
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return { file, type, size: bytes.length };
}

/** One key per request: sent again after a lost answer, it returns the first job, not a second. */
export const newIdempotencyKey = () => randomUUID();
