// The page's MD5 against RFC 1321's test suite (appendix A.5), and a multi-MiB input
// against Python's hashlib, so Content-MD5 and the ETag checks rest on a known-good hash.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";

import { md5 } from "../md5.js";

const bytes = (text) => new TextEncoder().encode(text).buffer;

test("RFC 1321 test suite", () => {
  const suite = {
    "": "d41d8cd98f00b204e9800998ecf8427e",
    a: "0cc175b9c0f1b6a831c399e269772661",
    abc: "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    abcdefghijklmnopqrstuvwxyz: "c3fcd3d76192e4007dfb496cca67e13b",
    ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789: "d174ab98d277d9f5a5611c2c9f419d9f",
    "12345678901234567890123456789012345678901234567890123456789012345678901234567890": "57edf4a22be3c955ac49da2e2107b67a",
  };
  for (const [text, hex] of Object.entries(suite)) assert.equal(md5(bytes(text)).hex, hex, JSON.stringify(text));
});

test("base64 is the digest S3 takes as Content-MD5", () => {
  assert.equal(md5(bytes("")).base64, "1B2M2Y8AsgTpgAmY7PhCfg==");
});

test("every length around the 56- and 64-byte padding edges", () => {
  const python = process.env.PYTHON || "python3";
  const lengths = [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129];
  const expected = execFileSync(python, ["-c",
    "import hashlib,sys\n" +
    "for n in map(int, sys.argv[1:]): print(hashlib.md5(bytes(i % 251 for i in range(n))).hexdigest())",
    ...lengths.map(String)], { encoding: "utf8" }).trim().split("\n");
  lengths.forEach((n, i) => {
    const data = Uint8Array.from({ length: n }, (_, j) => j % 251);
    assert.equal(md5(data.buffer).hex, expected[i], `${n} bytes`);
  });
});

test("a 5 MiB + 3 bytes part matches Python's hashlib", () => {
  const n = 5 * 1024 * 1024 + 3;
  const data = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  const python = process.env.PYTHON || "python3";
  const expected = execFileSync(python, ["-c",
    "import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())"],
  { input: data, encoding: "utf8", maxBuffer: 1 << 20 }).trim();
  assert.equal(md5(data.buffer).hex, expected);
});
