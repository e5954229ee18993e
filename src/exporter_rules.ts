/**
 * The per-exporter rules of the configuration as matchers: the allow-list (NETFLOW_ALLOWED_EXPORTERS) and
 * the sampling overrides (NETFLOW_SAMPLING_RATE's CIDR=N). Config keeps them as plain CIDR lists, so it can
 * be cloned into the pipeline Worker; each side builds the matcher it uses from them, once, here.
 */
import { CidrMap, CidrSet } from "./cidr.ts";
import type { SamplingOverride } from "./config_values.ts";

/** The set of prefixes allowed to send, or undefined when every exporter is allowed. */
export function exporterAllowList(cidrs: readonly string[] | undefined): CidrSet | undefined {
  return cidrs === undefined ? undefined : new CidrSet(cidrs);
}

/** The rate of the most specific override containing an address; undefined when there are no overrides. */
export function samplingOverrideLookup(
  overrides: readonly SamplingOverride[],
): ((address: string) => number | undefined) | undefined {
  if (overrides.length === 0) return undefined;
  const map = new CidrMap(overrides.map((o) => [o.cidr, o.rate] as [string, number]));
  return (address) => map.get(address);
}
