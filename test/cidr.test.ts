import assert from "node:assert/strict";
import { CidrMap, CidrSet, formatCidr, parseCidr, parseIp } from "../src/cidr.ts";
import { parseIpv4Int } from "../src/netflow/addresses.ts";

Deno.test("parseIpv4Int is strict about dotted quads", () => {
  assert.equal(parseIpv4Int("0.0.0.0"), 0);
  assert.equal(parseIpv4Int("255.255.255.255"), 0xffffffff);
  assert.equal(parseIpv4Int("10.1.2.3"), 0x0a010203);
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "01.2.3.4",
      "1..2.3",
      "1.2.3.4.",
      " 1.2.3.4",
      "a.b.c.d",
    ]
  ) {
    assert.equal(parseIpv4Int(bad), -1, bad);
  }
});

Deno.test("parseIp reads IPv4, IPv6 with :: compression, embedded IPv4, brackets and zones", () => {
  assert.deepEqual(parseIp("192.0.2.1"), { family: 4, bytes: new Uint8Array([192, 0, 2, 1]) });
  assert.deepEqual(parseIp("::")?.bytes, new Uint8Array(16));
  assert.deepEqual(parseIp("::1")?.bytes, new Uint8Array([...new Array(15).fill(0), 1]));
  assert.deepEqual(
    parseIp("2001:db8::8:800:200c:417a")?.bytes,
    new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0, 0x20, 0x0c, 0x41, 0x7a]),
  );
  assert.deepEqual(parseIp("1::")?.bytes, new Uint8Array([0, 1, ...new Array(14).fill(0)]));
  assert.deepEqual(
    parseIp("::ffff:1.2.3.4")?.bytes,
    new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]),
  );
  assert.deepEqual(parseIp("1:2:3:4:5:6:7:8")?.bytes.slice(14), new Uint8Array([0, 8]));
  assert.deepEqual(parseIp("1:2:3:4:5:6:7::")?.bytes.slice(12), new Uint8Array([0, 7, 0, 0]));
  assert.deepEqual(parseIp("ABCD::EF")?.bytes.slice(0, 2), new Uint8Array([0xab, 0xcd]));
  assert.equal(parseIp("[::1]")?.family, 6);
  assert.equal(parseIp("fe80::1%eth0")?.family, 6);
  for (
    const bad of [
      "",
      ":",
      ":::",
      "1:::2",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "1:2:3:4:5:6:7",
      "12345::",
      "g::1",
      ":1:2:3:4:5:6:7",
      "1.2.3.4::",
      "::1.2.3.4:5",
      "::1.2.3.256",
      "fe80::1%",
      "example.com",
    ]
  ) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("parseCidr: bare addresses are host prefixes, host bits are cleared, prefixes are checked", () => {
  assert.deepEqual(parseCidr("10.1.2.3"), { family: 4, bytes: new Uint8Array([10, 1, 2, 3]), prefix: 32 });
  assert.deepEqual(parseCidr("10.1.2.3/8"), { family: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 });
  assert.equal(parseCidr("::1").prefix, 128);
  assert.equal(parseCidr(" 2001:db8::/32 ").prefix, 32);
  assert.equal(formatCidr(parseCidr("2001:db8:ffff::1/33")), "2001:db8:8000::/33");
  assert.equal(formatCidr(parseCidr("0.0.0.0/0")), "0.0.0.0/0");
  assert.equal(formatCidr(parseCidr("::/0")), "::/0");
  assert.equal(formatCidr(parseCidr("2001:0:0:1:0:0:0:1")), "2001:0:0:1::1/128");
  assert.equal(formatCidr(parseCidr("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7/128");
  for (
    const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/8/8", "x/8"]
  ) {
    assert.throws(() => parseCidr(bad), Error, bad);
  }
  assert.throws(() => parseCidr("fe80::1%eth0/64"), /zone/);
});

Deno.test("CidrSet matches IPv4 at every edge prefix", () => {
  const set = new CidrSet(["10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/31"]);
  assert.ok(set.contains("10.0.0.0"));
  assert.ok(set.contains("10.255.255.255"));
  assert.ok(!set.contains("11.0.0.0"));
  assert.ok(!set.contains("9.255.255.255"));
  assert.ok(set.contains("192.0.2.7"));
  assert.ok(!set.contains("192.0.2.6"));
  assert.ok(set.contains("198.51.100.1"));
  assert.ok(!set.contains("198.51.100.2"));
  assert.ok(!set.contains("not an address"));
  assert.ok(!set.contains("2001:db8::1"));
  const all = new CidrSet(["0.0.0.0/0"]);
  assert.ok(all.contains("0.0.0.0") && all.contains("255.255.255.255") && all.contains("128.0.0.1"));
  assert.ok(!all.contains("::1"), "an IPv4 /0 does not match IPv6");
  const top = new CidrSet(["128.0.0.0/1"]);
  assert.ok(top.contains("255.0.0.1") && top.contains("128.0.0.0") && !top.contains("127.255.255.255"));
  assert.deepEqual(new CidrSet(["10.9.8.7/8", "2001:db8::1/32"]).cidrs, ["10.0.0.0/8", "2001:db8::/32"]);
});

Deno.test("CidrSet matches IPv6, including /0, /128 and non-byte-aligned prefixes", () => {
  const set = new CidrSet(["2001:db8::/32", "fe80::1/128", "2001:db9:8000::/33"]);
  assert.ok(set.contains("2001:db8::1"));
  assert.ok(set.contains("2001:DB8:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"));
  assert.ok(!set.contains("2001:db7::1"));
  assert.ok(set.contains("fe80::1"));
  assert.ok(set.contains("fe80::1%eth0"));
  assert.ok(!set.contains("fe80::2"));
  assert.ok(set.contains("2001:db9:8000::1"));
  assert.ok(set.contains("2001:db9:ffff::1"));
  assert.ok(!set.contains("2001:db9:7fff::1"));
  assert.ok(!set.contains("10.0.0.1"));
  const all = new CidrSet(["::/0"]);
  assert.ok(all.contains("::") && all.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
});

Deno.test("IPv4-mapped IPv6 addresses match IPv4 prefixes, and mapped prefixes match IPv4", () => {
  const v4 = new CidrSet(["192.0.2.0/24"]);
  assert.ok(v4.contains("::ffff:192.0.2.55"));
  assert.ok(v4.contains("::FFFF:C000:0237"), "hex form of the mapped address");
  assert.ok(!v4.contains("::ffff:192.0.3.1"));
  assert.ok(!v4.contains("::192.0.2.55"), "IPv4-compatible (deprecated) is not mapped");
  const mapped = new CidrSet(["::ffff:192.0.2.0/120"]);
  assert.ok(mapped.contains("192.0.2.200"));
  assert.ok(mapped.contains("::ffff:192.0.2.1"));
  assert.ok(!mapped.contains("192.0.3.1"));
  const allMapped = new CidrSet(["::ffff:0:0/96"]);
  assert.ok(allMapped.contains("8.8.8.8"));
  assert.ok(!allMapped.contains("2001:db8::1"));
});

Deno.test("CidrSet rejects invalid entries and answers repeat lookups from its cache consistently", () => {
  assert.throws(() => new CidrSet(["10.0.0.0/8", "10.0.0.0/40"]), /10\.0\.0\.0\/40/);
  const set = new CidrSet(["10.0.0.0/8"]);
  for (let i = 0; i < 10_000; i++) {
    const a = `10.${i & 255}.${i >> 8}.1`;
    assert.ok(set.contains(a));
    assert.ok(set.contains(a)); // cached
    assert.ok(!set.contains(`11.${i & 255}.${i >> 8}.1`));
  }
});

Deno.test("CidrMap picks the longest matching prefix", () => {
  const map = new CidrMap<number>([["10.0.0.0/8", 1000], ["10.1.0.0/16", 10], ["0.0.0.0/0", 1], [
    "2001:db8::/32",
    7,
  ]]);
  assert.equal(map.get("10.1.2.3"), 10);
  assert.equal(map.get("10.2.0.1"), 1000);
  assert.equal(map.get("::ffff:10.1.0.1"), 10);
  assert.equal(map.get("192.0.2.1"), 1);
  assert.equal(map.get("2001:db8::5"), 7);
  assert.equal(map.get("2001:db9::5"), undefined);
  assert.equal(map.get("garbage"), undefined);
  assert.equal(new CidrMap([]).get("10.0.0.1"), undefined);
});
