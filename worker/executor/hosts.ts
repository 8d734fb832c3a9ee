/** The host name a RUN sees unless the op names one (BuildKit's is "buildkitsandbox"). */
export const DEFAULT_HOSTNAME = "kilnsandbox";

/**
 * The /etc/hosts a RUN sees: localhost (with the sandbox's host name, so `hostname -i` and
 * lookups of it work without DNS), the IPv6 loopback names, then `extraHosts` in order.
 */
export function generateHosts(hostname: string, extraHosts: readonly { readonly host: string; readonly ip: string }[] = []): string {
  const lines = [`127.0.0.1\tlocalhost ${hostname}`, "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const { host, ip } of extraHosts) lines.push(`${ip}\t${host}`);
  return `${lines.join("\n")}\n`;
}
