/**
 * The newest TLS version each ClientHello offers (decode/tls-sni.ts clientHelloVersion: supported_versions,
 * else the legacy version), against tshark on the real captures: for every ClientHello over TCP, the
 * highest 3.x value of tls.handshake.extensions.supported_version, else tls.handshake.version.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildSource } from '../capture/index.js';
import { buildDecoder } from '../decode/index.js';
import { formatAddr } from '../decode/packet.js';
import { buildLocalNets } from '../flow/local-nets.js';
import { buildPayloadInspector } from '../flow/payload.js';
import { FlowTable } from '../flow/table.js';
import { flowKey, tsharkFields } from '../../test/helpers/decode-test-support.js';
import { describeShared, REAL_CAPTURES } from '../../test/helpers/shared.js';

describeShared('ClientHello versions on the real captures', () => {
  it('match tshark for every ClientHello earshot reads whole', async () => {
    const files = readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
    let compared = 0;
    let old = 0;
    for (const file of files) {
      const path = join(REAL_CAPTURES, file);
      const rows = await tsharkFields(path, ['ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'tcp.srcport', 'tcp.dstport', 'tls.handshake.version', 'tls.handshake.extensions.supported_version'],
        ['-Y', 'tls.handshake.type == 1 && tcp']);
      // the first ClientHello of each connection, as earshot reads only that one
      const want = new Map<string, number>();
      for (const r of rows) {
        const key = flowKey(r['ip.src'].at(-1) ?? r['ipv6.src'].at(-1)!, Number(r['tcp.srcport'][0]), r['ip.dst'].at(-1) ?? r['ipv6.dst'].at(-1)!, Number(r['tcp.dstport'][0]));
        const listed = r['tls.handshake.extensions.supported_version'].map((v) => parseInt(v, 16)).filter((v) => v >> 8 === 3);
        if (!want.has(key)) want.set(key, listed.length > 0 ? Math.max(...listed) : parseInt(r['tls.handshake.version'][0], 16));
      }
      const got = new Map<string, number>();
      const words = new Uint32Array(4);
      // the payload inspector as the pipeline runs it, with the hook the findings stage gets
      const decoder = buildDecoder();
      const table = new FlowTable({ maxFlows: 100_000, tcpIdleTimeoutMs: 300_000, udpIdleTimeoutMs: 120_000 }, buildLocalNets([]), () => {});
      const inspector = buildPayloadInspector({
        onDnsAnswer() {},
        onSni() {},
        onClientHello(flow, version) {
          const client = formatAddr(flow.ipVersion, flow.clientInto(words));
          const server = formatAddr(flow.ipVersion, flow.serverInto(words));
          got.set(flowKey(client, flow.clientPort, server, flow.serverPort), version);
        },
      });
      await buildSource({ kind: 'file', path }, {}).run((buf, offset, capLen, wireLen, timeMs, linkType) => {
        const p = decoder.decode(buf, offset, capLen, wireLen, timeMs, linkType);
        if (p === null || p.srcPort < 0 || (p.proto !== 6 && p.proto !== 17)) return;
        const flow = table.account(p);
        inspector.inspect(flow, table.up, p);
      });
      for (const [key, version] of got) {
        if (!want.has(key)) continue; // tshark did not take it for TLS (a port it does not dissect as such)
        expect(version.toString(16), `${file} ${key}`).toBe(want.get(key)!.toString(16));
        compared++;
        if (version < 0x0303) old++;
      }
    }
    expect(compared).toBeGreaterThan(350);
    expect(old).toBeGreaterThan(10);
  }, 300_000);
});
