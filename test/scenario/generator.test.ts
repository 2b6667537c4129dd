/**
 * The scenario generator, judged by tshark: the pcap must be one Wireshark reads without complaint, with
 * the names, announcements and server names a real household shows, and uploads whose per-second bytes
 * (measured by tshark, not by the generator) are the scenario's ground truth. Then earshot's own
 * pipeline runs on it: the voice assistants must come out as assistants, the rest not.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayReport } from '../helpers/replay.js';
import { exampleDevices, generateScenario, type GenerateOptions, type Scenario, scenarioPcapBytes, writeScenarioPcap } from './generator.js';
import { TCP_TRANSPORT, QUIC_TRANSPORT, payloadOf, uploadWrites } from './plan.js';

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

const devices = exampleDevices();
const [kitchenEcho, bedroomEcho, homepod, nest, , phone, tv, laptop] = devices;
const startMs = Date.parse('2026-03-14T23:55:00Z');
const options: GenerateOptions = {
  seed: 7,
  startMs,
  durationMs: 10 * 60_000,
  devices,
  acrossMidnight: true,
  randomActivations: 3,
  activations: [
    // two Echos hear one wake word: arbitration
    { device: kitchenEcho.mac, start: startMs + 40_000 },
    { device: bedroomEcho.mac, start: startMs + 40_150 },
    { device: homepod.mac, start: startMs + 70_000, kind: 'false' },
    { device: nest.mac, start: startMs + 100_000 },
    { device: nest.mac, start: startMs + 400_000, kind: 'false' },
    { device: kitchenEcho.mac, start: startMs + 130_000 },
    { device: kitchenEcho.mac, start: startMs + 150_000, kind: 'follow-up' },
    { device: bedroomEcho.mac, start: startMs + 450_000, kind: 'timer' },
  ],
};

let dir: string;
let scenario: Scenario;
let file: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'earshot-scenario-'));
  scenario = generateScenario(options);
  file = join(dir, 'household.pcap');
  writeScenarioPcap(scenario, file);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** One frame as tshark reads it. */
interface Row { timeMs: number; src: string; dst: string; dport: number; len: number }

let rowsRead: Row[] | null = null;
let serversFound: Map<string, Set<string>> | null = null;

function tsharkRows(): Row[] {
  rowsRead ??= readRows();
  return rowsRead;
}

function readRows(): Row[] {
  const out = tshark(['-r', file, '-T', 'fields', '-E', 'separator=\t', '-e', 'frame.time_epoch', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.dstport', '-e', 'udp.dstport', '-e', 'frame.len']);
  return out.split('\n').filter(Boolean).map((line) => {
    const f = line.split('\t');
    return { timeMs: Number(f[0]) * 1000, src: f[1], dst: f[2], dport: Number(f[3] || f[4]), len: Number(f[5]) };
  });
}

/** Per device IP, the addresses of its voice servers, found the way an analyst would with tshark. */
function voiceServers(): Map<string, Set<string>> {
  serversFound ??= findVoiceServers();
  return serversFound;
}

function findVoiceServers(): Map<string, Set<string>> {
  const servers = new Map<string, Set<string>>();
  const add = (device: string, server: string) => servers.set(device, (servers.get(device) ?? new Set()).add(server));
  // an Echo's channel carries no name: it is the connection to Amazon's voice range 52.94.0.0/16
  for (const line of tshark(['-r', file, '-Y', 'ip.dst == 52.94.0.0/16 && tcp.dstport == 443', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst']).split('\n')) {
    if (line) add(...(line.split('\t') as [string, string]));
  }
  for (const line of tshark(['-r', file, '-Y', 'tls.handshake.extensions_server_name == "guzzoni.apple.com" || tls.handshake.extensions_server_name == "www.google.com"', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst']).split('\n')) {
    if (line) add(...(line.split('\t') as [string, string]));
  }
  return servers;
}

describe('scenario plan', () => {
  it('is the same for the same seed, byte for byte, and differs for another seed', () => {
    const again = generateScenario(options);
    expect(again).toEqual(scenario);
    expect(scenarioPcapBytes(again).equals(readFileSync(file))).toBe(true);
    const other = generateScenario({ ...options, seed: 8 });
    expect(scenarioPcapBytes(other).equals(readFileSync(file))).toBe(false);
  });

  it('marks arbitration, spans midnight, and gives a wake event to every intended activation', () => {
    const raced = scenario.activations.filter((a) => a.arbitration);
    expect(raced.map((a) => [a.device, a.arbitration])).toEqual([[kitchenEcho.mac, 'won'], [bedroomEcho.mac, 'lost']]);
    expect(raced[1].durationMs).toBeGreaterThanOrEqual(1000);
    expect(raced[1].durationMs).toBeLessThanOrEqual(3000);
    const midnight = Date.parse('2026-03-15T00:00:00Z');
    expect(scenario.activations.some((a) => a.start < midnight && a.start + a.durationMs > midnight)).toBe(true);
    expect(new Set(scenario.activations.map((a) => a.kind))).toEqual(new Set(['command', 'false', 'follow-up', 'timer']));
    const intended = scenario.activations.filter((a) => a.intended);
    expect(scenario.wakeEvents).toHaveLength(intended.length);
    for (const [i, a] of intended.entries()) {
      const lead = a.start - Date.parse(scenario.wakeEvents[i].time);
      expect(scenario.wakeEvents[i]).toMatchObject({ device: a.device, source: 'scenario' });
      expect(lead).toBeGreaterThan(0);
      expect(lead).toBeLessThan(1000);
    }
    expect(scenario.decoys.map((d) => d.kind)).toContain('event-post');
  });

  it('refuses activations that overlap on one device or fall outside the capture', () => {
    expect(() => generateScenario({ ...options, activations: [{ device: nest.mac, start: startMs + 60_000 }, { device: nest.mac, start: startMs + 61_000 }] })).toThrow(/overlap/);
    expect(() => generateScenario({ ...options, activations: [{ device: nest.mac, start: startMs + 1000 }] })).toThrow(/between/);
  });

  it('splits any upload into writes whose frames add up to exactly the bytes asked for', () => {
    fc.assert(fc.property(fc.integer({ min: 1000, max: 30_000 }), fc.integer({ min: 3000, max: 30_000 }), fc.boolean(), (durationMs, rate, quic) => {
      const transport = quic ? QUIC_TRANSPORT : TCP_TRANSPORT;
      const bytes = Math.round((rate * durationMs) / 1000);
      const writes = uploadWrites(0, durationMs, bytes, quic ? 'flat' : 'front-loaded', transport);
      const frames = writes.reduce((sum, w) => sum + w.payload + transport.overhead * Math.ceil(w.payload / transport.maxPayload), 0);
      expect(frames).toBe(bytes);
      expect(writes.every((w) => w.payload >= transport.minWrite && w.atMs <= durationMs)).toBe(true);
      expect(payloadOf(transport, transport.maxPayload + transport.overhead)).toBe(transport.maxPayload);
    }), { numRuns: 200 });
  });
});

describe('scenario pcap, read by tshark', () => {
  it('has no errors, malformed packets or bad checksums', () => {
    const checks = ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];
    const expert = tshark(['-r', file, ...checks, '-q', '-z', 'expert']);
    expect(expert).not.toMatch(/^Errors/m);
    // Wireshark warns about every QUIC connection whose keys it lacks: real captures show the same
    const warnings = expert.split(/^Warns.*$/m)[1]?.split(/^Notes|^Chats/m)[0] ?? '';
    for (const line of warnings.split('\n').filter((l) => /^\s+\d+\s/.test(l))) expect(line).toMatch(/QUIC\s+Failed to create decryption context/);
    expect(tshark(['-r', file, '-Y', '_ws.malformed || tcp.analysis.flags', '-T', 'fields', '-e', 'frame.number']).trim()).toBe('');
    const bad = tshark(['-r', file, ...checks, '-Y', 'ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0', '-T', 'fields', '-e', 'frame.number']);
    expect(bad.trim()).toBe('');
  });

  it('shows each device asking for its address by name', () => {
    const out = tshark(['-r', file, '-Y', 'dhcp.option.dhcp == 3', '-T', 'fields', '-e', 'eth.src', '-e', 'dhcp.option.hostname', '-e', 'dhcp.option.vendor_class_id', '-e', 'dhcp.option.request_list_item']);
    const names = new Map(out.split('\n').filter(Boolean).map((l) => l.split('\t')).map((f) => [f[0], f]));
    expect(names.get(kitchenEcho.mac)?.[1]).toMatch(/^amazon-[0-9a-f]{9}$/);
    expect(names.get(kitchenEcho.mac)?.[2]).toBe('dhcpcd-5.5.6');
    expect(names.get(nest.mac)?.[1]).toBe('Google-Home-Mini');
    expect(names.get(homepod.mac)?.[1]).toBe('HomePod');
    expect(names.get(phone.mac)?.[1]).toMatch(/^android-[0-9a-f]{16}$/);
    expect(names.get(tv.mac)?.[1]).toBe('LGwebOSTV');
    expect(names.get(laptop.mac)?.[2]).toBe('MSFT 5.0');
    expect(names.get(laptop.mac)?.[3]).toMatch(/^1,3,6,15/);
    expect(names.size).toBe(devices.length);
  });

  it('shows the mDNS announcements of the Cast, AirPlay and Sonos speakers', () => {
    const out = tshark(['-r', file, '-Y', 'mdns && dns.flags.response == 1', '-T', 'fields', '-e', 'eth.src', '-e', 'dns.ptr.domain_name', '-e', 'dns.txt']);
    const byMac = new Map(out.split('\n').filter(Boolean).map((l) => [l.split('\t')[0], l]));
    expect(byMac.get(nest.mac)).toMatch(/_googlecast\._tcp\.local/);
    expect(byMac.get(nest.mac)).toMatch(/md=Google Home Mini/);
    expect(byMac.get(nest.mac)).toMatch(/fn=Kitchen/);
    expect(byMac.get(homepod.mac)).toMatch(/Living Room\._airplay\._tcp\.local/);
    expect(byMac.get(homepod.mac)).toMatch(/model=AudioAccessory1,1/);
    expect(byMac.get(devices[4].mac)).toMatch(/_sonos\._tcp\.local/);
  });

  it('shows the server names of TLS and of the QUIC Initial, and the guzzoni CNAME', () => {
    const sni = tshark(['-r', file, '-Y', 'tls.handshake.type == 1 && tcp', '-T', 'fields', '-e', 'eth.src', '-e', 'tls.handshake.extensions_server_name']);
    expect(sni).toContain(`${kitchenEcho.mac}\tdevice-metrics-us.amazon.com`);
    expect(sni).toContain(`${homepod.mac}\tguzzoni.apple.com`);
    expect(sni).toContain(`${phone.mac}\tpitangui.amazon.com`);
    const quic = tshark(['-r', file, '-Y', 'quic', '-T', 'fields', '-e', 'tls.handshake.extensions_server_name']);
    expect(new Set(quic.split('\n').filter(Boolean))).toEqual(new Set(['www.google.com']));
    const dns = tshark(['-r', file, '-Y', 'dns.qry.name == "guzzoni.apple.com" && dns.flags.response == 1', '-T', 'fields', '-e', 'dns.cname', '-e', 'dns.a']);
    expect(dns).toMatch(/^origin\.guzzoni-apple\.com\.akadns\.net\t17\.\d+\.\d+\.\d+$/m);
  });

  it("has the Echos' voice channels open before the capture, with keepalives", () => {
    const rows = tsharkRows();
    const syn = tshark(['-r', file, '-Y', 'ip.addr == 52.94.0.0/16 && tcp.flags.syn == 1', '-T', 'fields', '-e', 'frame.number']);
    expect(syn.trim()).toBe('');
    const voice = voiceServers();
    const small = rows.filter((r) => r.src === kitchenEcho.ip && voice.get(kitchenEcho.ip)?.has(r.dst) && r.len >= 154 && r.len <= 154 + 54);
    expect(small.length).toBeGreaterThanOrEqual(10);
  });

  it("carries every activation's upload: bytes and duration as the ground truth says", () => {
    const rows = tsharkRows();
    const voice = voiceServers();
    for (const a of scenario.activations) {
      const ip = devices.find((d) => d.mac === a.device)!.ip;
      const end = a.start + a.durationMs;
      const up = rows.filter((r) => r.src === ip && r.dport === 443 && voice.get(ip)?.has(r.dst) && r.timeMs >= a.start && r.timeMs <= end);
      const bytes = up.reduce((sum, r) => sum + r.len, 0);
      const label = `${a.kind} on ${a.device} at ${new Date(a.start).toISOString()}`;
      expect(bytes, label).toBe(a.bytesUp);
      expect(up[0].timeMs - a.start, label).toBeLessThan(50);
      expect(end - up[up.length - 1].timeMs, label).toBeLessThan(150);
      for (let s = a.start; s + 1000 <= end; s += 1000) {
        const second = up.filter((r) => r.timeMs >= s && r.timeMs < s + 1000).reduce((sum, r) => sum + r.len, 0);
        expect(second, `${label}, second ${(s - a.start) / 1000}`).toBeGreaterThan(3000);
      }
    }
  });

  it('has no second over the Dubois threshold on a voice channel outside activations and decoys', () => {
    const rows = tsharkRows();
    const voice = voiceServers();
    const known = [...scenario.activations, ...scenario.decoys].map((u) => ({ ip: devices.find((d) => d.mac === u.device)!.ip, from: u.start - 1000, to: u.start + u.durationMs + 1000 }));
    const bins = new Map<string, number>();
    for (const r of rows) {
      if (r.dport !== 443 || !voice.get(r.src)?.has(r.dst)) continue;
      const key = `${r.src} ${Math.floor(r.timeMs / 1000)}`;
      bins.set(key, (bins.get(key) ?? 0) + r.len);
    }
    for (const [key, bytes] of bins) {
      if (bytes <= 12_172) continue;
      const [ip, second] = key.split(' ');
      const t = Number(second) * 1000;
      expect(known.some((k) => k.ip === ip && t + 1000 > k.from && t < k.to), `${key}: ${bytes} B`).toBe(true);
    }
  });
});

describe("earshot's pipeline on the scenario", () => {
  it('finds the assistants and their voice channels', async () => {
    const report = await replayReport(file);
    const device = (mac: string) => report.devices.find((d) => d.mac === mac);
    const evidence = (mac: string) => JSON.stringify(device(mac)?.evidence);
    for (const d of [kitchenEcho, bedroomEcho, homepod, nest]) expect(device(d.mac)?.assistant, `${d.kind}: ${evidence(d.mac)}`).toBe(true);
    for (const d of [phone, tv, laptop]) expect(device(d.mac)?.assistant, `${d.kind}: ${evidence(d.mac)}`).toBe(false);
    const voiceFlows = report.flows.filter((f) => f.service === 'voice');
    for (const d of [kitchenEcho, bedroomEcho]) expect(voiceFlows.some((f) => f.device === d.mac && f.proto === 'tcp' && f.server.startsWith('52.94.'))).toBe(true);
    expect(voiceFlows.some((f) => f.device === homepod.mac && f.sni === 'guzzoni.apple.com')).toBe(true);
    const nestFlows = report.flows.filter((f) => f.device === nest.mac && f.proto === 'udp' && f.serverPort === 443);
    expect(nestFlows.length).toBe(scenario.activations.filter((a) => a.device === nest.mac).length);
    for (const f of nestFlows) expect(f).toMatchObject({ sni: 'www.google.com', service: 'voice' });
  });
});
