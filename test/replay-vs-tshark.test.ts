/**
 * The report contract against tshark on every real capture: per-flow packets and bytes in each
 * direction, capture totals, DNS answers and TLS SNIs must equal what tshark reads from the same file.
 */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { replayReport } from './helpers/replay.js';
import { describeShared, haveShared, REAL_CAPTURES, realCapture } from './helpers/shared.js';
import { flowKey, tsharkDnsAnswers, tsharkFlows, tsharkSnis, tsharkTotals, tsharkUnspecifiedSenders } from './helpers/tshark.js';

const files = haveShared() ? readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort() : [];

describeShared('replay report equals tshark on the real captures', () => {
  it('has captures to check', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
  });

  for (const name of files) {
    it(`${name}: totals, per-flow packets and bytes, DNS answers, SNI`, async () => {
      const file = realCapture(name);
      const report = await replayReport(file);

      const totals = tsharkTotals(file);
      expect(report.capture.packets).toBe(totals.packets);
      expect(report.capture.bytes).toBe(totals.bytes);

      // flows: aggregate earshot's flow records per 5-tuple (idle timeouts may split one into several)
      const ours = new Map<string, Map<string, { packets: number; bytes: number }>>();
      for (const f of report.flows) {
        const key = flowKey(f.proto, f.client, f.clientPort, f.server, f.serverPort);
        const dirs = ours.get(key) ?? new Map<string, { packets: number; bytes: number }>();
        const add = (ep: string, packets: number, bytes: number) => {
          if (packets === 0) return;
          const d = dirs.get(ep) ?? { packets: 0, bytes: 0 };
          d.packets += packets;
          d.bytes += bytes;
          dirs.set(ep, d);
        };
        add(`${f.client}|${f.clientPort}`, f.packetsUp, f.bytesUp);
        add(`${f.server}|${f.serverPort}`, f.packetsDown, f.bytesDown);
        ours.set(key, dirs);
      }
      const oracle = tsharkFlows(file);
      const expected = Object.fromEntries([...oracle].map(([k, v]) => [k, Object.fromEntries(v.dirs)]));
      const actual = Object.fromEntries([...ours].map(([k, v]) => [k, Object.fromEntries(v)]));
      expect(Object.keys(actual).length).toBe(Object.keys(expected).length);
      expect(actual).toEqual(expected);

      // from the unspecified address (DHCP before an address): a flow per sending device, as tshark's
      // eth.src tells them apart, not one flow counted to whichever device sent first
      const unspecified = new Map<string, { packets: number; bytes: number }>();
      for (const f of report.flows) {
        if (f.client !== '0.0.0.0' && f.client !== '::') continue;
        const key = `${f.device} ${f.proto} ${f.client}|${f.clientPort} ${f.server}|${f.serverPort}`;
        const u = unspecified.get(key) ?? { packets: 0, bytes: 0 };
        u.packets += f.packetsUp;
        u.bytes += f.bytesUp;
        unspecified.set(key, u);
      }
      expect(Object.fromEntries(unspecified)).toEqual(Object.fromEntries(tsharkUnspecifiedSenders(file)));

      // DNS answers: the same multiset of (name, type, data, ttl)
      const dns = report.dns.map((a) => `${a.name} ${a.type} ${a.data} ${a.ttl}`).sort();
      expect(dns).toEqual(tsharkDnsAnswers(file));

      // SNI of every TCP ClientHello tshark sees
      const snis = new Map<string, string>();
      // TCP ClientHellos here; QUIC Initials are compared in identify-tag.test.ts
      for (const f of report.flows) if (f.sni && f.proto === 'tcp') snis.set(`${f.client}|${f.clientPort} ${f.server}|${f.serverPort}`, f.sni);
      expect(Object.fromEntries(snis)).toEqual(Object.fromEntries(tsharkSnis(file)));
    });
  }
});
