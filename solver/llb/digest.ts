import { createHash } from "node:crypto";

/** A content digest in OCI form: `sha256:` followed by 64 lowercase hex digits. */
export type Digest = `sha256:${string}` & { readonly __brand: "Digest" };

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** The sha256 digest of `data` (a string is hashed as its UTF-8 bytes). */
export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
}

/** Whether `value` is a well-formed sha256 digest. */
export function isDigest(value: string): value is Digest {
  return DIGEST_PATTERN.test(value);
}

/** Validates `value` as a sha256 digest; throws a TypeError naming the bad value otherwise. */
export function parseDigest(value: string): Digest {
  if (!isDigest(value)) throw new TypeError(`Cannot parse digest "${value}": expected "sha256:" and 64 lowercase hex digits`);
  return value;
}

/** The hex part of a digest, as used for blob file names. */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}
