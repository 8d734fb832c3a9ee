/**
 * A named build context (`docker build --build-context NAME=VALUE`), as lowering uses it: a local
 * directory the caller provides as the local source `name`, or an image reference that replaces
 * the one a FROM or `--from` names.
 */
export type NamedContext = { readonly kind: "local"; readonly name: string } | { readonly kind: "image"; readonly ref: string };

/** Named contexts by their lookup key (see `contextKey`). */
export type NamedContexts = ReadonlyMap<string, NamedContext>;

/** No named contexts. */
export const NO_NAMED_CONTEXTS: NamedContexts = new Map();

/**
 * The key a name is looked up by, as BuildKit's dockerui NamedContext: an image reference in its
 * familiar form (`docker.io/library/alpine:latest` → `alpine`, `docker.io/me/app` → `me/app`)
 * without a `:latest` tag; anything else lower-cased as it is. So `--build-context alpine=…`
 * matches `FROM alpine`, `FROM alpine:latest` and `FROM docker.io/library/alpine`.
 */
export function contextKey(name: string): string {
  let text = name.trim().toLowerCase();
  const slash = text.indexOf("/");
  const first = slash === -1 ? "" : text.slice(0, slash);
  if (first === "docker.io" || first === "index.docker.io") text = text.slice(slash + 1);
  if (text.startsWith("library/") && text.split("/").length === 2) text = text.slice("library/".length);
  if (!text.includes("@") && text.endsWith(":latest")) text = text.slice(0, -":latest".length);
  return text;
}

/** Indexes `contexts` (name → context, as given) by lookup key; a later duplicate key wins. */
export function namedContexts(contexts: Readonly<Record<string, NamedContext>> | undefined): NamedContexts {
  const out = new Map<string, NamedContext>();
  for (const [name, context] of Object.entries(contexts ?? {})) out.set(contextKey(name), context);
  return out;
}

/** The named context a FROM image, stage name or `--from` value refers to, if any. */
export function findNamedContext(contexts: NamedContexts, name: string): NamedContext | undefined {
  return contexts.size === 0 ? undefined : contexts.get(contextKey(name));
}
