/**
 * The network's own protocols have a service class from their ports when no name gives one: DNS, mDNS,
 * LLMNR, NetBIOS, DHCP and SSDP are `network`, NTP is `time` (collector/tag: portService). Checked on
 * every shared capture against tshark's dissectors, which find those protocols in a conversation by
 * their own rules: every conversation tshark finds one of them in has the class, and every flow with
 * the class is one tshark finds it in, or one that carried nothing to dissect (a port scan's SYN to 53).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { replayReport } from './helpers/replay.js';
import { describeShared, haveShared, REAL_CAPTURES, SHARED, VCFP_CAPTURES } from './helpers/shared.js';
import { flowKey, tsharkFlowProtocols } from './helpers/tshark.js';

/** tshark's names of the protocols that are `network` (bootp is DHCP in older Wiresharks). */
const NETWORK = new Set(['dns', 'mdns', 'llmnr', 'nbns', 'nbdgm', 'dhcp', 'bootp', 'dhcpv6', 'ssdp']);

const files = haveShared()
  ? [
    ...readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => join(REAL_CAPTURES, f)),
    ...readdirSync(VCFP_CAPTURES).filter((f) => f.endsWith('.pcap')).slice(0, 5).map((f) => join(VCFP_CAPTURES, f)),
    ...['echodot2', 'echospot', 'nestmini'].map((d) => join(SHARED, 'captures', 'cic-iot-2022-rebuilt', d)).flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.pcap')).slice(0, 3).map((f) => join(dir, f))),
  ]
  : [];

describeShared('service classes of the network\'s own protocols, against tshark', () => {
  it('every conversation tshark finds DNS, mDNS, LLMNR, NetBIOS, DHCP, SSDP or NTP in has its class, and no other flow has one', async () => {
    let labelled = 0;
    const wrong: string[] = [];
    for (const file of files) {
      const report = await replayReport(file);
      const protocols = tsharkFlowProtocols(file);
      for (const f of report.flows) {
        const seen = protocols.get(flowKey(f.proto, f.client, f.clientPort, f.server, f.serverPort)) ?? new Set<string>();
        const expected = seen.has('ntp') ? 'time' : [...seen].some((p) => NETWORK.has(p)) ? 'network' : null;
        const fromPorts = f.service === 'network' || (f.service === 'time' && (f.clientPort === 123 || f.serverPort === 123));
        if (fromPorts) labelled++;
        // a name's class wins (kindle-time.amazon.com over HTTP is `time` by its name): only flows without one
        const named = f.service !== null && f.service !== 'other' && !fromPorts;
        if (expected !== null && !named && f.service !== expected) wrong.push(`${file.split('/').pop()} ${f.proto} ${f.client}:${f.clientPort} -> ${f.server}:${f.serverPort}: tshark ${[...seen].join(':')}, service ${f.service}`);
        // labelled by its ports: tshark finds the protocol there, or nothing at all (no payload: a SYN to 53)
        if (fromPorts && expected === null && seen.size > 0) wrong.push(`${file.split('/').pop()} ${f.proto} ${f.client}:${f.clientPort} -> ${f.server}:${f.serverPort}: service ${f.service}, tshark ${[...seen].join(':')}`);
      }
    }
    console.log(`service ports: ${labelled} flows labelled network or time by their ports in ${files.length} captures`);
    expect(labelled).toBeGreaterThan(500);
    expect(wrong).toEqual([]);
  }, 300_000);
});
