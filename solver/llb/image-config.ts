import type { Platform } from "./platform.js";

/** The runtime defaults of an image: the `config` member of an OCI image configuration. */
export interface ImageConfig {
  readonly User?: string;
  readonly ExposedPorts?: Readonly<Record<string, Record<string, never>>>;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly Volumes?: Readonly<Record<string, Record<string, never>>>;
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
  readonly ArgsEscaped?: boolean;
  readonly Healthcheck?: HealthConfig;
  readonly Shell?: readonly string[];
  readonly OnBuild?: readonly string[];
}

/** HEALTHCHECK as Docker stores it; durations in nanoseconds. */
export interface HealthConfig {
  readonly Test?: readonly string[];
  readonly Interval?: number;
  readonly Timeout?: number;
  readonly StartPeriod?: number;
  readonly StartInterval?: number;
  readonly Retries?: number;
}

/** One line of image history. `empty_layer` is true when the step added no layer. */
export interface HistoryEntry {
  readonly created?: string;
  readonly created_by?: string;
  readonly author?: string;
  readonly comment?: string;
  readonly empty_layer?: boolean;
}

/** An OCI image configuration file (application/vnd.oci.image.config.v1+json), as stored in a registry. */
export interface ImageSpec {
  readonly created?: string;
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly config?: ImageConfig;
  readonly rootfs: { readonly type: "layers"; readonly diff_ids: readonly string[] };
  readonly history?: readonly HistoryEntry[];
}

/**
 * What the frontend hands the exporter beside the Definition: the target platform, the final
 * runtime config, and history (the base image's lines followed by one per instruction). The
 * exporter matches non-empty history lines to layers and fills `rootfs`.
 */
export interface ImageMetadata {
  readonly platform: Platform;
  readonly config: ImageConfig;
  readonly history: readonly HistoryEntry[];
}
