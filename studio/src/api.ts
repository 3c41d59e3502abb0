/**
 * The API as the page calls it: same origin, the visitor's key as a Bearer header (kept in
 * sessionStorage, so it lives as long as the tab and is never written to disk by us), and the API's
 * error shape `{"error": {code, message, field}}` turned into an ApiProblem.
 */
const KEY_STORAGE = 'apex-studio-api-key';

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

type RequestOptions = { json?: unknown; form?: FormData; headers?: Record<string, string>; signal?: AbortSignal; anonymous?: boolean };

export class Api {
  get key(): string {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  }

  set key(value: string) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  /** The raw response of a successful call (streams and images); a problem is thrown as ApiProblem. */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.key && !options.anonymous) headers.Authorization = `Bearer ${this.key}`;
    let body: BodyInit | undefined = options.form;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    let response: Response;
    try {
      response = await fetch(path, { method, headers, body, signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new ApiProblem(0, 'network_error', 'the API could not be reached; check the connection and try again');
    }
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.fetch(method, path, options)).json() as Promise<T>;
  }

  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.json<T>('GET', path, options);
  }

  post<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.json<T>('POST', path, options);
  }
}

async function problemOf(response: Response): Promise<ApiProblem> {
  const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string; field?: string } } | null;
  const error = body?.error;
  return new ApiProblem(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `the API answered ${response.status} ${response.statusText}`, error?.field);
}
