/**
 * Whether `text` is an image reference Docker accepts, as distribution/reference's
 * ParseNormalizedNamed decides (the check behind BuildKit's InvalidDefaultArgInFrom): an optional
 * registry domain, lowercase path components, an optional tag and an optional digest, the name at
 * most 255 characters, and not a bare 64-hex image id. The frontend only validates the form: it
 * never resolves anything (worker/oci's parser does that, and the frontend may not import it).
 */
export function isNormalizedReference(text: string): boolean {
  if (IDENTIFIER.test(text)) return false;
  const slash = text.indexOf("/");
  const first = slash === -1 ? "" : text.slice(0, slash);
  const hasDomain = slash !== -1 && (/[.:]/u.test(first) || first === "localhost" || first.toLowerCase() !== first);
  const remainder = hasDomain ? text.slice(slash + 1) : text;
  const colon = remainder.indexOf(":");
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) return false;
  const full = `${hasDomain ? first : "docker.io"}/${!hasDomain && !remainder.includes("/") ? "library/" : ""}${remainder}`;
  const match = REFERENCE.exec(full);
  if (match === null) return false;
  if ((match[1] ?? "").length > 255) return false;
  const digest = match[3];
  if (digest === undefined) return true;
  const [algorithm = "", hex = ""] = digest.split(":");
  const length = DIGEST_LENGTHS[algorithm];
  return length !== undefined && hex.length === length && /^[a-f0-9]+$/u.test(hex);
}

const IDENTIFIER = /^[a-f0-9]{64}$/u;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`, "u");
const DIGEST_LENGTHS: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
