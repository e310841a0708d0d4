// Type declarations of findity-auth (ESM and CommonJS).

/** The library's status of a failed call. */
export type FindityStatus = 'INVALID_ARGUMENT' | 'NETWORK' | 'AUTH' | 'SERVER' | 'INTERNAL';

/** A libfindity call failed. The message never contains a secret, token or code. */
export declare class FindityError extends Error {
  constructor(status: FindityStatus, httpStatus: number, message: string);
  readonly name: 'FindityError';
  /** 'INVALID_ARGUMENT' (nothing sent), 'NETWORK', 'AUTH', 'SERVER' or 'INTERNAL'. */
  readonly status: FindityStatus;
  /** HTTP status of the answer behind the failure; 0 when there was none. */
  readonly httpStatus: number;
}

/** libfindity's counters (struct FindityStats), camelCase. */
export interface FindityStats {
  cacheHits: number;
  cacheMisses: number;
  clientCredentialsRequests: number;
  refreshTokenRequests: number;
  authorizationGrantRequests: number;
  authorizationCodeRequests: number;
  backgroundRefreshes: number;
  fallbacks: number;
  retries: number;
  /** Failed calls by C status code: failures[4] are AUTH failures. */
  failures: number[];
  throttlePauses: number;
  throttleWaits: number;
  idleEvictions: number;
  storeHits: number;
  storeWrites: number;
  storeLockWaits: number;
  storeErrors: number;
}

export type FindityLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** An organization access token: an already-resolved promise when cached, else fetched off the event loop. */
export declare function getToken(baseUrl: string, clientId: string, clientSecret: string): Promise<string>;
/** A user's (employee's) access token: authorization grant + code exchange, cached. */
export declare function getUserToken(baseUrl: string, clientId: string, clientSecret: string, userId: string): Promise<string>;
/** The cached token if one can be handed out now, else null. Synchronous; never blocks. */
export declare function cachedToken(baseUrl: string, clientId: string, clientSecret: string, userId?: string | null): string | null;
/** On a 401: forget the cached token only if it is still `token`. */
export declare function invalidateToken(baseUrl: string, clientId: string, token: string, userId?: string | null): void;
/** Forget the cached token, whatever it is. */
export declare function invalidate(baseUrl: string, clientId: string, userId?: string | null): void;
/** Forget every cached token of this process. */
export declare function clearCache(): void;
/** Whole seconds until the cached token expires; 0 when none is cached. */
export declare function tokenExpiresIn(baseUrl: string, clientId: string, userId?: string | null): number;
/** Set a process-wide option ('timeout_ms', 'shared_cache', ...); '' or null restores the default. */
export declare function setOption(name: string, value: string | number | null | undefined): void;
export declare function stats(): FindityStats;
/** The library's log lines to fn (null: back to stderr with $FINDITY_LOG). */
export declare function setLogger(fn: ((level: FindityLogLevel, message: string) => void) | null, level?: FindityLogLevel | 'off'): void;
/** The loaded libfindity's version, "MAJOR.MINOR.PATCH". */
export declare function version(): string;
/** Where libfindity was loaded from. */
export declare function libraryPath(): string;

export interface FindityAuthOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** null or undefined: the organization token. */
  userId?: string | null;
  /** The fetch to use; default: the global fetch at call time. */
  fetch?: typeof globalThis.fetch;
}

/** A token source and fetch with the Bearer header, resending once after a 401. */
export declare class FindityAuth {
  constructor(options: FindityAuthOptions);
  readonly baseUrl: string;
  readonly clientId: string;
  readonly userId: string | null;
  token(): Promise<string>;
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  toJSON(): { baseUrl: string; clientId: string; userId: string | null };
}

declare const findityAuth: {
  getToken: typeof getToken;
  getUserToken: typeof getUserToken;
  cachedToken: typeof cachedToken;
  invalidateToken: typeof invalidateToken;
  invalidate: typeof invalidate;
  clearCache: typeof clearCache;
  tokenExpiresIn: typeof tokenExpiresIn;
  setOption: typeof setOption;
  stats: typeof stats;
  setLogger: typeof setLogger;
  version: typeof version;
  libraryPath: typeof libraryPath;
  FindityError: typeof FindityError;
  FindityAuth: typeof FindityAuth;
};
export default findityAuth;
