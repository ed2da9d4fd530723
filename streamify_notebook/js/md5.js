// MD5 (RFC 1321) of an ArrayBuffer: S3's Content-MD5 and part ETags are MD5, and
// SubtleCrypto has none. Unrolled (the round constants are RFC 1321's): about ten times
// the speed of a loop.
function md5Blocks(h, x, count) {
  let a0 = h[0], b0 = h[1], c0 = h[2], d0 = h[3];
  for (let o = 0; o < count * 16; o += 16) {
    let a = a0, b = b0, c = c0, d = d0;
    const x0 = x[o], x1 = x[o + 1], x2 = x[o + 2], x3 = x[o + 3], x4 = x[o + 4], x5 = x[o + 5],
      x6 = x[o + 6], x7 = x[o + 7], x8 = x[o + 8], x9 = x[o + 9], x10 = x[o + 10],
      x11 = x[o + 11], x12 = x[o + 12], x13 = x[o + 13], x14 = x[o + 14], x15 = x[o + 15];
    a = b + rotl(a + ((b & c) | (~b & d)) + x0 - 680876936 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x1 - 389564586 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x2 + 606105819 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x3 - 1044525330 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x4 - 176418897 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x5 + 1200080426 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x6 - 1473231341 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x7 - 45705983 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x8 + 1770035416 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x9 - 1958414417 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x10 - 42063 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x11 - 1990404162 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x12 + 1804603682 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x13 - 40341101 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x14 - 1502002290 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x15 + 1236535329 | 0, 22) | 0;

    a = b + rotl(a + ((b & d) | (c & ~d)) + x1 - 165796510 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x6 - 1069501632 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x11 + 643717713 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x0 - 373897302 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x5 - 701558691 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x10 + 38016083 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x15 - 660478335 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x4 - 405537848 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x9 + 568446438 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x14 - 1019803690 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x3 - 187363961 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x8 + 1163531501 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x13 - 1444681467 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x2 - 51403784 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x7 + 1735328473 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x12 - 1926607734 | 0, 20) | 0;

    a = b + rotl(a + (b ^ c ^ d) + x5 - 378558 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x8 - 2022574463 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x11 + 1839030562 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x14 - 35309556 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x1 - 1530992060 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x4 + 1272893353 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x7 - 155497632 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x10 - 1094730640 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x13 + 681279174 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x0 - 358537222 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x3 - 722521979 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x6 + 76029189 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x9 - 640364487 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x12 - 421815835 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x15 + 530742520 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x2 - 995338651 | 0, 23) | 0;

    a = b + rotl(a + (c ^ (b | ~d)) + x0 - 198630844 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x7 + 1126891415 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x14 - 1416354905 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x5 - 57434055 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x12 + 1700485571 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x3 - 1894986606 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x10 - 1051523 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x1 - 2054922799 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x8 + 1873313359 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x15 - 30611744 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x6 - 1560198380 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x13 + 1309151649 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x4 - 145523070 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x11 - 1120210379 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x2 + 718787259 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x9 - 343485551 | 0, 21) | 0;

    a0 = a0 + a | 0; b0 = b0 + b | 0; c0 = c0 + c | 0; d0 = d0 + d | 0;
  }
  h[0] = a0; h[1] = b0; h[2] = c0; h[3] = d0;
}
function rotl(x, s) { return (x << s) | (x >>> (32 - s)); }

// Returns {hex, base64} of the MD5 of an ArrayBuffer (words read little-endian).
export function md5(buffer) {
  const bytes = new Uint8Array(buffer);
  const length = bytes.length;
  const whole = Math.floor(length / 64);
  const h = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  md5Blocks(h, new Int32Array(bytes.buffer, bytes.byteOffset, whole * 16), whole);
  const rest = length - whole * 64;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole * 64));
  tail[rest] = 0x80;
  const view = new DataView(tail.buffer);
  const bits = length * 8;
  view.setUint32(tail.length - 8, bits % 2 ** 32, true);
  view.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  md5Blocks(h, new Int32Array(tail.buffer), tail.length / 64);
  const digest = new Uint8Array(h.buffer);
  let hex = "";
  let binary = "";
  for (const byte of digest) {
    hex += byte.toString(16).padStart(2, "0");
    binary += String.fromCharCode(byte);
  }
  return { hex, base64: btoa(binary) };
}
