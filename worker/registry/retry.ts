import { setTimeout as sleep } from "node:timers/promises";
import { isRetryableRegistryError } from "./errors.js";

/** How often and how patiently to retry. Delays grow exponentially from `baseDelayMs`, with jitter, capped at `maxDelayMs`. */
export interface RetryPolicy {
  /** Total tries including the first; 1 means no retry. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Five tries over roughly six seconds, as registries that restart or throttle need. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 3000 };

export interface RetryOptions {
  readonly policy?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Which failures to retry; default: RegistryErrors whose `retryable` is true, nothing else. */
  readonly retryable?: (error: unknown) => boolean;
  /** Called before each wait, with the failed attempt (1-based) and its error. */
  readonly onRetry?: (attempt: number, error: unknown) => void;
}

/**
 * Runs `work` until it succeeds, fails with a non-retryable error, or the policy's attempts are
 * spent; then throws the last error. The decision reads the error's `retryable` flag, never its
 * message. Waiting is cancelled by `signal`, and an aborted signal is never retried.
 */
export async function withRetries<T>(work: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const retryable = options.retryable ?? isRetryableRegistryError;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= policy.attempts || options.signal?.aborted === true || !retryable(error)) throw error;
      options.onRetry?.(attempt, error);
      await sleep(backoffDelay(policy, attempt), undefined, options.signal === undefined ? {} : { signal: options.signal });
    }
  }
}

/** The wait after failed attempt `attempt` (1-based): exponential with "equal jitter". */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
