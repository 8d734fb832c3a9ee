const BRAND = Symbol.for("kiln.error");

/**
 * Base of every error kiln throws on purpose. `code` is stable (tests and the daemon protocol match
 * on it); the brand lets `isKilnError()` recognise one across realms and module copies.
 */
export class KilnError extends Error {
  readonly code: string;
  readonly [BRAND] = true;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Whether `value` is a kiln error, even one made by another copy of this module. */
export function isKilnError(value: unknown): value is KilnError {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
