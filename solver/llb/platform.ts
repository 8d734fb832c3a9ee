/** An OCI platform. `variant` is present only where it means something (arm v6/v7, arm64 v9…). */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

const ARCH_ALIASES: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  x86: "386",
  i386: "386",
  i686: "386",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  ia32: "386",
  x64: "amd64",
};

/**
 * Parses `os/arch[/variant]` (or a bare `arch`, taken as linux) the way containerd's platforms
 * package does: lower case, architecture aliases normalised, `arm64/v8` and `amd64/v1` made plain.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split("/");
  if (parts.length === 0 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new TypeError(`Cannot parse platform "${text}": expected "os/arch" or "os/arch/variant"`);
  }
  const [first, second, third] = parts as [string, string | undefined, string | undefined];
  if (second === undefined) return normalizePlatform({ os: "linux", architecture: first });
  return normalizePlatform(third === undefined ? { os: first, architecture: second } : { os: first, architecture: second, variant: third });
}

/** Normalises aliases and default variants so equal platforms compare equal. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  const architecture = ARCH_ALIASES[platform.architecture.toLowerCase()] ?? platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  if (architecture === "arm64" && variant === "v8") variant = undefined;
  if (architecture === "amd64" && variant === "v1") variant = undefined;
  if (architecture === "arm" && variant === undefined) variant = "v7";
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** `os/arch[/variant]`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined).join("/");
}

/** Whether two platforms are the same after normalisation. */
export function samePlatform(a: Platform, b: Platform): boolean {
  return formatPlatform(normalizePlatform(a)) === formatPlatform(normalizePlatform(b));
}

/** The platform of this machine (Linux, with Node's architecture name normalised). */
export function defaultPlatform(): Platform {
  return normalizePlatform({ os: "linux", architecture: process.arch });
}
