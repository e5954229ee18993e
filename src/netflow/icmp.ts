/**
 * ICMP / ICMPv6 type and code of a flow (SPEC §3 `netflow.icmp.type`, `netflow.icmp.code`), worked out once
 * by the decoder so that attributes and the Community ID read the same values.
 *
 * Sources, first that gives a value: the combined element (icmpTypeCodeIPv4/IPv6, IE 32/139), the separate
 * elements (icmpType/Code IPv4/IPv6, IE 176–179), then the destination port, where v1/v5 and many v9
 * exporters put type × 256 + code. The IPv4 elements serve ICMP (1), the IPv6 ones ICMPv6 (58).
 *
 * Cisco IOS-XR writes ICMPv6 combined values byte-swapped (code × 256 + type). A standard ICMPv6 value never
 * has a zero high byte with a low byte ≥ 128 (type 0 is reserved), so such a value marks the exporter and
 * domain for good: that value and every later combined ICMPv6 value from it are read swapped. The separate
 * elements 178/179 cannot be swapped and are read as they are.
 *
 * @example
 * ```ts
 * import type { Flow } from "./types.ts";
 * const flow: Flow = { protocol: 58, dstPort: 0x0087 };
 * const state = { icmp6Swapped: false };
 * resolveIcmp(flow, undefined, state); // flow.icmpType 135, flow.icmpCode 0; state.icmp6Swapped true
 * ```
 */
import type { Flow } from "./types.ts";

/** Per exporter + domain: whether combined ICMPv6 values come byte-swapped (IOS-XR). */
export interface IcmpState {
  icmp6Swapped: boolean;
}

/**
 * Slots of the raw element values a record carried (−1 = absent); the decoder's record scratch holds
 * one array of {@link ICMP_SLOTS} numbers in this order.
 */
export const ICMP_TYPE_CODE_V4 = 0, ICMP_TYPE_CODE_V6 = 1, ICMP_TYPE_V4 = 2, ICMP_CODE_V4 = 3;
export const ICMP_TYPE_V6 = 4, ICMP_CODE_V6 = 5, ICMP_SLOTS = 6;

/**
 * Sets `flow.icmpType` / `flow.icmpCode` for an ICMP (1) or ICMPv6 (58) flow; other flows are left alone.
 * `elements`: the record's raw IE 32/139/176–179 values, or undefined when it had none (v1/v5). `state`:
 * the exporter + domain's swap flag (undefined where there is none: v1/v5 carry IPv4 only).
 */
export function resolveIcmp(
  flow: Flow,
  elements: Float64Array | undefined,
  state: IcmpState | undefined,
): void {
  const protocol = flow.protocol;
  if (protocol !== 1 && protocol !== 58) return;
  const v6 = protocol === 58;
  if (elements !== undefined) {
    const combined = elements[v6 ? ICMP_TYPE_CODE_V6 : ICMP_TYPE_CODE_V4];
    if (combined >= 0 && setCombined(flow, combined, v6, state)) return;
    const type = elements[v6 ? ICMP_TYPE_V6 : ICMP_TYPE_V4],
      code = elements[v6 ? ICMP_CODE_V6 : ICMP_CODE_V4];
    if ((type >= 0 || code >= 0) && setSeparate(flow, type, code, v6)) return;
  }
  if (flow.dstPort !== undefined) setCombined(flow, flow.dstPort, v6, state);
}

/**
 * A combined value (type × 256 + code as exported) → type × 256 + code as read, or −1 when it gives
 * nothing (out of range, or an ICMPv6 0: type 0 is reserved), so the next source is tried. With `state`,
 * ICMPv6 values may mark the exporter as swapping and are then read swapped. Without it (flows that did
 * not come through the decoder), the value is read as it is.
 */
export function icmpCombined(value: number, v6: boolean, state: IcmpState | undefined): number {
  if (!(value >= 0 && value <= 0xffff) || (v6 && value === 0)) return -1;
  if (v6 && state !== undefined) {
    if (!state.icmp6Swapped && value >= 128 && value < 256) state.icmp6Swapped = true;
    if (state.icmp6Swapped) return ((value & 0xff) << 8) | (value >> 8);
  }
  return value;
}

function setCombined(flow: Flow, value: number, v6: boolean, state: IcmpState | undefined): boolean {
  const v = icmpCombined(value, v6, state);
  if (v < 0) return false;
  flow.icmpType = v >> 8;
  flow.icmpCode = v & 0xff;
  return true;
}

/** Separate type and code elements (−1 = absent); false when they give nothing. */
function setSeparate(flow: Flow, type: number, code: number, v6: boolean): boolean {
  if (type > 255 || code > 255 || (v6 && type <= 0 && code <= 0)) return false;
  if (type >= 0) flow.icmpType = type;
  if (code >= 0) flow.icmpCode = code;
  return true;
}
