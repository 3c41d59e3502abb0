/** One Server-Sent Event as a stream carries it; `data` is JSON in every stream of this API. */
export type SseEvent = { id?: string; event?: string; data?: unknown };

/** The events of a stream's text (comments and keep-alives left out). */
export function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').filter((l) => l && !l.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const e: SseEvent = {};
      for (const line of lines) {
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'id') e.id = value;
        if (field === 'event') e.event = value;
        if (field === 'data') e.data = JSON.parse(value);
      }
      return e;
    });
}
