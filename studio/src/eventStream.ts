import { TERMINAL_STATUSES } from '../../src/store/statuses';
import { ApiProblem, type Api } from './api';

export type StreamEvent = { id: string; type: string; data: Record<string, unknown> };

const RECONNECT_MS = 2000;

/**
 * Follows a resource's Server-Sent Events until its terminal status. EventSource cannot send the
 * Authorization header, so the stream is read with fetch(); a dropped connection is resumed with
 * Last-Event-ID, so no event is seen twice or missed. `fromId` resumes after an event seen before
 * (a retried job's stream goes on after its earlier terminal status). Returns the last event's id;
 * ends quietly when `signal` aborts.
 */
export async function followEvents(api: Api, path: string, onEvent: (event: StreamEvent) => void, signal: AbortSignal, fromId = ''): Promise<string> {
  let lastId = fromId;
  while (!signal.aborted) {
    try {
      const response = await api.fetch('GET', path, { headers: { Accept: 'text/event-stream', ...(lastId ? { 'Last-Event-ID': lastId } : {}) }, signal });
      for await (const event of readEvents(response.body!, signal)) {
        if (event.id) lastId = event.id;
        onEvent(event);
        if (event.type === 'status' && TERMINAL_STATUSES.has(String(event.data.status))) return lastId;
      }
    } catch (err) {
      if (signal.aborted) break;
      // A missing resource or a refused key will not heal by reconnecting.
      if (err instanceof ApiProblem && [400, 401, 403, 404].includes(err.status)) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
  return lastId;
}

/** The text/event-stream format: blocks separated by a blank line, `id:`, `event:`, `data:` fields, `:` comments. */
async function* readEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<StreamEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const stop = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', stop);
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function parseBlock(block: string): StreamEvent | undefined {
  let id = '';
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return undefined;
  try {
    return { id, type, data: JSON.parse(data.join('\n')) as Record<string, unknown> };
  } catch {
    return { id, type, data: { text: data.join('\n') } };
  }
}
