// The operator API (docs/api/operator.md), with the token of this browser tab. The token
// lives in sessionStorage only: never in a URL, gone when the tab closes.

const TOKEN_KEY = "drover.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Role = "viewer" | "operator" | "admin";

export interface Whoami {
  id: string;
  name: string;
  role: Role;
  expires_at?: number | null;
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

// Where the API is: beside the console's own directory, whatever a reverse proxy puts before
// both ("/console/" here, "/drover/console/" behind a proxy's "/drover/" is "/drover").
const API_ROOT = `${location.pathname.replace(/\/console(\/.*)?$/, "")}/api/v1`;

// One request; the answer's JSON, or an ApiError with the server's own message.
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer: Response;
  try {
    answer = await fetch(`${API_ROOT}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Revalidated at every ask: the browser sends the ETag it holds and the server answers
      // 304 when nothing changed (docs/console.md, "Live updates").
      cache: "no-cache",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `the server did not answer (${String(e)})`);
  }
  const text = await answer.text();
  let doc: unknown = null;
  if (text) {
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ApiError(answer.status, "bad_answer", `the server answered ${answer.status} with no JSON`);
    }
  }
  if (!answer.ok) {
    const err = (doc as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(answer.status, err?.code ?? "error", err?.message ?? `HTTP ${answer.status}`);
  }
  return doc as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => call<T>("POST", path, body ?? {});
