/** Which steps a cache export takes: `min` the final stage's chain, `max` every step. */
export type CacheMode = "min" | "max";

/**
 * Where a build's cache goes (`--export-cache`, `--cache-to`), validated:
 * - `local`: an OCI image layout directory `dest`;
 * - `registry`: an OCI artifact pushed to `ref`;
 * - `inline`: inside the image's config (always `min`), for `--import-cache type=registry,ref=IMAGE`.
 * `cacheMounts` also ships the build's `RUN --mount=type=cache` directories.
 */
export type CacheExportSpec =
  | { readonly kind: "local"; readonly dest: string; readonly mode: CacheMode; readonly cacheMounts: boolean }
  | { readonly kind: "registry"; readonly ref: string; readonly mode: CacheMode; readonly cacheMounts: boolean }
  | { readonly kind: "inline" };

/** Where a build's cache comes from (`--import-cache`, `--cache-from`): a local cache directory, or a cache artifact or image in a registry. */
export type CacheImportSpec = { readonly kind: "local"; readonly src: string } | { readonly kind: "registry"; readonly ref: string };
