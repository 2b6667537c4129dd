/**
 * Network hygiene findings on the real captures (../shared/captures/real): each capture raises exactly
 * the kinds listed here, and a capture not listed raises none. Each listed kind has the tshark display
 * filter that shows its evidence in that capture (the oracle, run here); the first matching frames are
 * noted beside it. None of the real captures has a port mapping, an inbound connection, DNS over TLS or
 * HTTPS, a plaintext mail session or an assistant beside a computer: those kinds are tested on a
 * generated capture (collector/findings/findings.test.ts).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildCollector } from '../collector/index.js';
import { tshark } from './helpers/decode-test-support.js';
import { describeShared, REAL_CAPTURES } from './helpers/shared.js';

const PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '224.0.0.0/4'];
const v4Local = (field: string) => `(${PRIVATE.map((p) => `${field} == ${p}`).join(' || ')})`;
/** A request from a local IPv4 address to one on the internet. */
const outbound = `ip && ${v4Local('ip.src')} && !${v4Local('ip.dst')}`;

const FILTERS = {
  'plain-http': `http.request && ${outbound}`,
  'old-tls': 'tls.handshake.type == 1 && tls.handshake.version < 0x0303 && !(tls.handshake.extensions.supported_version >= 0x0303)',
  'dns-public-resolver': 'dns.flags.response == 0 && ip.dst in {8.8.8.8, 8.8.4.4, 1.1.1.1, 1.0.0.1, 9.9.9.9}',
} as const;
type Kind = keyof typeof FILTERS;

/** The kinds each capture raises, with where tshark shows them (frame numbers). */
const EXPECTED: Record<string, Partial<Record<Kind, string>>> = {
  'amazon-echo_alexa-time-query-0_xray.pcap': { 'old-tls': '#13: the Echo offers TLS 1.0 to amzdigital-a.akamaihd.net' },
  'amazon-echo_alexa-time-query-1_xray.pcap': { 'old-tls': '#144: the same TLS 1.0 ClientHello' },
  'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap': {
    'plain-http': '#85 GET spectrum.s3.amazonaws.com, #94 HEAD kindle-time.amazon.com',
    'dns-public-resolver': '#203: 172.16.42.213 asks 8.8.8.8',
  },
  'amazon-echodot2_normal-use_jhautry.pcap': { 'dns-public-resolver': '#836: 172.16.42.213 asks 8.8.8.8' },
  'amazon-echodot3_activation_neu.pcapng': { 'plain-http': '#959 GET fireoscaptiveportal.com (a connectivity probe: info)' },
  'android-alexa-app_jhautry.pcap': { 'plain-http': '#22 GET connectivitycheck.android.com, #143 GET alexa.amazon.com', 'old-tls': '#1116 TLS 1.0 to 52.94.232.134' },
  'android_dns-tls13-retx_ndpi.pcap': { 'plain-http': '#83 GET captive.apple.com, #227 GET check.googlezip.net' },
  'cicids2017-slice_multihost-lan_trafficmanipulator.pcap': { 'plain-http': '#2678 GET ping.chartbeat.net', 'old-tls': '#6897 TLS 1.0 to smtp.gmail.com' },
  'dns-cname_var-services_zeek.pcap': { 'plain-http': '#124 GET www.google.com' },
  'iphone_dns-cname-tls13-ipv6_ndpi.pcap': { 'plain-http': '#87 GET captive.apple.com' },
  'kakaotalk_linux-sll-dns-cname_ndpi.pcap': { 'plain-http': '#86 GET www.facebook.com', 'old-tls': '#44 TLS 1.0 to 173.252.97.2' },
  'netflix_dns-cname-sni_ndpi.pcap': { 'plain-http': '#346 GET art-2.nflximg.net' },
  'sites_tls13-sni-ipv6_ndpi.pcapng': { 'plain-http': '#122 GET videosnap.like.video' },
  // STARTTLS is used (#6-#10), so no plaintext-protocol; the ClientHello after it offers TLS 1.0
  'smtp-starttls_vlan-ipv6_ndpi.pcap': { 'old-tls': '#11 TLS 1.0 ClientHello after STARTTLS' },
  'tls-cert-too-long_tls13-dns-cname_ndpi.pcap': { 'dns-public-resolver': '#12: 192.168.1.121 asks 8.8.8.8', 'plain-http': '#74 GET www.microsoft.com' },
  'zoom_qinq-vlan-sni_ndpi.pcapng': { 'old-tls': '#1 TLS 1.0 to www.googletagmanager.com' },
};

describeShared('network hygiene findings on the real captures', () => {
  const files = readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort();

  it('finds the 31 captures and every listed one among them', () => {
    expect(files).toHaveLength(31);
    for (const f of Object.keys(EXPECTED)) expect(files).toContain(f);
  });

  it('tshark shows the evidence of every listed kind', async () => {
    const checks = Object.entries(EXPECTED).flatMap(([file, kinds]) => Object.keys(kinds).map((kind) => ({ file, kind: kind as Kind })));
    const counts: number[] = [];
    // two at a time: tshark is slow, and the machine has other tests to run
    for (let i = 0; i < checks.length; i += 2) {
      counts.push(...await Promise.all(checks.slice(i, i + 2).map(async ({ file, kind }) =>
        (await tshark(['-r', join(REAL_CAPTURES, file), '-Y', FILTERS[kind]])).split('\n').filter((l) => l.trim() !== '').length)));
    }
    checks.forEach((c, i) => expect(counts[i], `${c.file}: ${c.kind}`).toBeGreaterThan(0));
  }, 300_000);

  it('each capture raises exactly the listed kinds (none when unlisted)', async () => {
    const got: Record<string, string[]> = {};
    const want: Record<string, string[]> = {};
    for (const file of files) {
      const collector = buildCollector(loadConfig({ file: null }));
      await collector.run(buildSource({ kind: 'file', path: join(REAL_CAPTURES, file) }, {}));
      got[file] = [...new Set(collector.findings.list().map((f) => f.kind))].sort();
      want[file] = Object.keys(EXPECTED[file] ?? {}).sort();
    }
    expect(got).toEqual(want);
  }, 300_000);
});
