/**
 * A view's re-read of its resource, one at a time: asked again while a read is running (events come
 * in bursts), it reads once more after it, so the last state is always read and no read overtakes
 * another. `read` shows its own problems.
 */
export function coalescedRefresh(read: () => Promise<void>, signal: AbortSignal): () => Promise<void> {
  let reading: Promise<void> | undefined;
  let again = false;
  return async () => {
    if (reading) return void (again = true);
    reading = (async () => {
      do {
        again = false;
        await read();
      } while (again && !signal.aborted);
    })();
    await reading;
    reading = undefined;
  };
}
