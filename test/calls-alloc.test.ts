/**
 * The call tracker's hot path allocates nothing (STYLE.md: views, not copies): two million UDP packets
 * of an assistant, with a non-assistant's packets among them, run through it with V8 tracing its
 * young-generation collections. A collection means the loop allocated (a boxed 48-bit MAC costs
 * 16 bytes a packet: 32 MB here, dozens of collections). Runs the built module (dist/).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { PROJECT_ROOT } from './helpers/shared.js';

const module = (path: string) => pathToFileURL(join(PROJECT_ROOT, 'dist', path)).href;

const script = `
import { buildCallTracker } from '${module('collector/detect/calls.js')}';
import { createFlow } from '${module('collector/flow/flow.js')}';
import { DecodedPacket } from '${module('collector/decode/packet.js')}';
const ECHO = 0x44650da1b2c3;
const tracker = buildCallTracker((mac) => mac === ECHO, {});
const flow = (id, mac, server) => {
  const f = createFlow(id, 17, 4, id, 0, [0, 0, 0, 0xc0a80115], 50000 + id, [0, 0, 0, server], 61000);
  f.deviceMac = mac;
  f.deviceIsClient = true;
  return f;
};
const flows = [flow(1, ECHO, 0x36010203), flow(2, ECHO, 0x36010204), flow(3, ECHO, 0x36010205)];
const other = flow(4, 0x8425db3e4f50, 0x36010203);
const p = new DecodedPacket();
const payload = Buffer.alloc(140);
payload[0] = 0x80;
p.payloadBuf = payload;
p.payloadLength = 140;
p.wireLen = 182;
// packet times in whole ms: a fractional time is a heap number in the harness's own loop
function run(n, t) {
  for (let i = 0; i < n; i++) {
    t += 10;
    p.timeMs = t;
    tracker.onPacket((i & 63) === 0 ? other : flows[(i >> 16) % 3], (i & 1) === 0, p);
    if (i % 100 === 0) tracker.tick(t);
  }
  return t;
}
const t = run(200000, 1000);
globalThis.gc();
console.error('MEASURE');
run(2000000, t);
console.error('DONE');
`;

it('two million packets through the call tracker: no young-generation collection', () => {
  // --trace-gc writes to stdout, the markers to stderr: one stream, in order
  const out = execFileSync('/bin/sh', ['-c', `"${process.execPath}" --expose-gc --trace-gc --input-type=module -e "$SCRIPT" 2>&1`], { encoding: 'utf8', env: { ...process.env, SCRIPT: script } });
  expect(out).toContain('DONE');
  const during = out.slice(out.indexOf('MEASURE'), out.indexOf('DONE'));
  expect(during.match(/Scavenge/g) ?? [], during).toHaveLength(0);
});
