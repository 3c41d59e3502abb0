import type { Api } from './api';

/**
 * Images behind the API key (a job's attempts and result, an identity's photos and renders): an <img>
 * cannot send the Authorization header, so each is fetched once and shown from a blob: URL, released
 * when the view closes. An image that arrives after that gets no blob: URL at all: none is left behind
 * (a load started after the release), and no <img> is given one already revoked (a load in flight).
 */
export class AuthedImages {
  private readonly urls = new Map<string, Promise<{ url: string; type: string }>>();
  private released = false;

  constructor(private readonly api: Api) {}

  load(path: string, cacheKey = path): Promise<{ url: string; type: string }> {
    let entry = this.urls.get(cacheKey);
    if (!entry) {
      entry = this.api.fetch('GET', path).then(async (response) => {
        const blob = await response.blob();
        if (this.released) throw new Error('the view was closed');
        return { url: URL.createObjectURL(blob), type: blob.type };
      });
      entry.catch(() => this.urls.delete(cacheKey)); // a failed load is tried again on the next render
      this.urls.set(cacheKey, entry);
    }
    return entry;
  }

  /** An <img> that fills in once its image arrived, or says why it did not. */
  img(path: string, alt: string, cacheKey?: string): HTMLImageElement {
    const img = document.createElement('img');
    img.alt = alt;
    this.load(path, cacheKey).then(
      ({ url }) => (img.src = url),
      (err: Error) => (img.alt = `${alt} (not loaded: ${err.message})`),
    );
    return img;
  }

  release(): void {
    this.released = true;
    for (const entry of this.urls.values()) void entry.then(({ url }) => URL.revokeObjectURL(url), () => undefined);
    this.urls.clear();
  }
}
