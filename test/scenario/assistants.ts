/**
 * Traffic of the voice assistants (FACTS.md): the Echo's voice channel already open when capture
 * starts, with keepalives, activations, answers and event posts, plus its metrics uploads; the
 * HomePod's Siri connection to guzzoni.apple.com with its periodic exchanges and spikes; the Nest's
 * voice over QUIC to www.google.com, one connection per activation, plus its connectivity checks.
 */
import type { Net } from './network.js';
import { type Host, parseIp, parseMac } from './packets.js';
import { answerPlan, chunks, QUIC_TRANSPORT, uploadWrites, voiceChannel } from './plan.js';
import { clientInitialDatagram, newConnectionIds, serverHandshakeDatagram, serverInitialDatagram, shortHeaderDatagram } from './quic.js';
import { hashLabel, Rng } from './rng.js';
import type { Direction, TcpStream } from './tcp-stream.js';
import { applicationData } from './tls.js';
import type { DeviceKind, Scenario, ScenarioActivation, ScenarioDevice } from './types.js';

/** A device's frames need its MAC and address as bytes. */
export function hostOf(device: ScenarioDevice): Host {
  return { mac: parseMac(device.mac), ip: parseIp(device.ip) };
}

/** The draws of one device: the same for a seed whatever else the household holds. */
export function deviceRng(scenario: Scenario, device: ScenarioDevice, purpose: string): Rng {
  return new Rng(hashLabel(scenario.seed, `${purpose}:${device.mac.toLowerCase()}`));
}

/** An Echo's DHCP host name: "amazon-" and 9 hex digits, stable for the MAC (FACTS.md). */
export function echoHostName(mac: string): string {
  return `amazon-${hashLabel(0, mac.toLowerCase()).toString(16).padStart(8, '0')}${(hashLabel(1, mac) & 15).toString(16)}`;
}

/** One write on a voice channel. */
interface ChannelWrite {
  atUs: number;
  dir: Direction;
  payload: number;
}

/** Time spans (ms) during which the channel is busy with an activation, its answer or a decoy. */
function busySpans(scenario: Scenario, device: ScenarioDevice, kind: DeviceKind, marginMs: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const a of scenario.activations) {
    if (a.device !== device.mac) continue;
    const answer = answerPlan(scenario.seed, a, kind);
    spans.push([a.start - marginMs, (answer ? answer.start + answer.durationMs : a.start + a.durationMs) + marginMs]);
  }
  for (const d of scenario.decoys) if (d.device === device.mac) spans.push([d.start - marginMs, d.start + d.durationMs + marginMs]);
  return spans;
}

/** The writes of every activation, answer and decoy of a device on its TCP voice channel. */
function voiceWrites(scenario: Scenario, device: ScenarioDevice, kind: DeviceKind, rng: Rng, rttUs: number): ChannelWrite[] {
  const { profile, transport } = voiceChannel(kind);
  const writes: ChannelWrite[] = [];
  for (const a of scenario.activations) {
    if (a.device !== device.mac) continue;
    for (const w of uploadWrites(a.start, a.durationMs, a.bytesUp, profile, transport)) writes.push({ atUs: w.atMs * 1000, dir: 'up', payload: w.payload });
    const answer = answerPlan(scenario.seed, a, kind);
    if (answer) writes.push(...answerWrites(answer.start, answer.durationMs, answer.bytesDown));
  }
  for (const d of scenario.decoys) {
    if (d.device !== device.mac) continue;
    if (d.kind === 'periodic' || d.kind === 'call-audio') {
      for (const w of uploadWrites(d.start, d.durationMs, d.bytesUp, 'flat', transport)) writes.push({ atUs: w.atMs * 1000, dir: 'up', payload: w.payload });
    } else {
      // an event post or a spike is one message sent at once: full-size frames within a few ms (the vcfp
      // event posts fill 1-3 100-ms slots; an Echo Spot volume change 24 kB in 2), not a stream
      chunks(d.bytesUp, 16000).forEach((size, k) => writes.push({ atUs: (d.start + k * 2) * 1000, dir: 'up', payload: size }));
    }
    writes.push(...answerWrites(d.start + d.durationMs + rttUs / 1000 + rng.int(5, 40), 200, d.bytesDown));
  }
  return writes;
}

/** An answer: the first directive at once, the rest (speech, cards) spread over its duration. */
function answerWrites(startMs: number, durationMs: number, bytes: number): ChannelWrite[] {
  const sizes = chunks(bytes, 16000);
  return sizes.map((payload, i) => ({ atUs: (startMs + (i * durationMs) / Math.max(1, sizes.length)) * 1000, dir: 'down' as const, payload }));
}

/** Issues writes on a stream in time order (a stream sends each side's writes in the order given). */
function issue(stream: TcpStream, rng: Rng, writes: ChannelWrite[]): void {
  writes.sort((a, b) => a.atUs - b.atUs);
  for (const w of writes) stream.write(w.dir, w.atUs, applicationData(rng, w.payload));
}

function inSpans(spans: Array<[number, number]>, ms: number): boolean {
  return spans.some(([from, to]) => ms >= from && ms <= to);
}

/** Amazon Echo. `index` among the Echos picks its voice server (the first gets the Dubois capture's). */
export function renderEcho(net: Net, scenario: Scenario, device: ScenarioDevice, index: number): void {
  const rng = deviceRng(scenario, device, 'echo');
  const host = hostOf(device);
  const t0 = net.startUs;
  net.dhcp(host, rng, t0 + rng.int(200_000, 2_000_000), {
    hostName: echoHostName(device.mac), vendorClass: 'dhcpcd-5.5.6', parameterList: [1, 121, 33, 3, 6, 15, 28, 51, 58, 59, 119],
  });
  const instance = `amzn-${device.mac.replace(/:/g, '')}._amzn-wplay._tcp.local`;
  net.mdnsAnnounce(host, t0 + rng.int(2_500_000, 4_000_000), [
    { name: '_amzn-wplay._tcp.local', type: 'PTR', ttl: 4500, target: instance },
    { name: instance, type: 'SRV', ttl: 120, target: `${echoHostName(device.mac)}.local`, port: 55442, cacheFlush: true },
    { name: instance, type: 'TXT', ttl: 4500, entries: [`n=${device.name ?? 'Echo'}`, 's=0', 'at=1', 'sv=1'], cacheFlush: true },
  ], [{ name: `${echoHostName(device.mac)}.local`, type: 'A', ttl: 120, address: device.ip, cacheFlush: true }]);

  // the voice channel: open long before the capture, so no handshake (FACTS.md; Dubois capture)
  const address = index === 0 ? '52.94.233.109' : `52.94.${rng.int(224, 239)}.${rng.int(2, 250)}`;
  const rttUs = rng.int(25_000, 60_000);
  const stream = net.tcp(host, net.remote(address), rng, 443, rttUs);
  const writes = voiceWrites(scenario, device, 'echo', rng, rttUs);
  const busy = busySpans(scenario, device, 'echo', 3000);
  for (let t = t0 + rng.int(1_000_000, 30_000_000); t < net.endUs; t += rng.int(28_000_000, 32_000_000)) {
    if (inSpans(busy, t / 1000)) continue;
    writes.push({ atUs: t, dir: 'up', payload: rng.int(100, 154) });
    writes.push({ atUs: t + rttUs + rng.int(1000, 5000), dir: 'down', payload: rng.int(100, 154) });
  }
  issue(stream, rng, writes);

  // metrics: a short TLS upload to device-metrics-us.amazon.com every few minutes
  const telemetry = deviceRng(scenario, device, 'echo-metrics');
  for (let t = t0 + telemetry.int(20_000_000, 90_000_000); t < net.endUs; t += telemetry.int(180_000_000, 480_000_000)) {
    net.https(host, telemetry, 'device-metrics-us.amazon.com', t, telemetry.int(2000, 6000), telemetry.int(300, 900));
  }
  net.https(host, telemetry, 'api.amazonalexa.com', t0 + telemetry.int(5_000_000, 15_000_000), telemetry.int(600, 1500), telemetry.int(1500, 6000));
}

/** Apple HomePod: Siri over one TLS connection to guzzoni.apple.com (CNAME into akadns, 17.0.0.0/8). */
export function renderHomePod(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'homepod');
  const host = hostOf(device);
  const t0 = net.startUs;
  const name = device.name ?? 'Living Room';
  const hostName = `${name.replace(/[^A-Za-z0-9]+/g, '-')}.local`;
  net.dhcp(host, rng, t0 + rng.int(200_000, 1_500_000), {
    hostName: 'HomePod', vendorClass: null, parameterList: [1, 121, 3, 6, 15, 108, 114, 119, 252, 95, 44, 46],
  });
  const airplay = `${name}._airplay._tcp.local`;
  const companion = `${name}._companion-link._tcp.local`;
  net.mdnsAnnounce(host, t0 + rng.int(2_000_000, 3_500_000), [
    { name: '_airplay._tcp.local', type: 'PTR', ttl: 4500, target: airplay },
    { name: airplay, type: 'SRV', ttl: 120, target: hostName, port: 7000, cacheFlush: true },
    { name: airplay, type: 'TXT', ttl: 4500, cacheFlush: true, entries: [
      'acl=0', `deviceid=${device.mac.toUpperCase()}`, 'features=0x4A7FDFD5,0xBC157FDE', 'flags=0x18644',
      'model=AudioAccessory1,1', 'protovers=1.1', 'srcvers=670.6.2', 'vv=2' ] },
    { name: '_companion-link._tcp.local', type: 'PTR', ttl: 4500, target: companion },
    { name: companion, type: 'SRV', ttl: 120, target: hostName, port: 49153, cacheFlush: true },
    { name: companion, type: 'TXT', ttl: 4500, entries: ['rpMac=0', 'rpFl=0x20000', 'rpVr=360.4'], cacheFlush: true },
  ], [{ name: hostName, type: 'A', ttl: 120, address: device.ip, cacheFlush: true }]);

  const { address, readyUs } = net.lookup(host, rng, t0 + rng.int(3_000_000, 4_500_000), 'guzzoni.apple.com');
  const session = net.tls(host, rng, 'guzzoni.apple.com', address, readyUs + 1000);
  issue(session.stream, rng, voiceWrites(scenario, device, 'homepod', rng, session.rttUs));
  net.https(host, rng, 'mesu.apple.com', t0 + rng.int(10_000_000, 30_000_000), rng.int(500, 900), rng.int(4000, 12000));
}

/** Google Nest / Home: voice over QUIC to www.google.com, a new connection per activation. */
export function renderNest(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'nest');
  const host = hostOf(device);
  const t0 = net.startUs;
  const id = rng.hex(32);
  net.dhcp(host, rng, t0 + rng.int(200_000, 1_500_000), {
    hostName: 'Google-Home-Mini', vendorClass: 'dhcpcd-6.8.2', parameterList: [1, 121, 33, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59, 119, 252],
  });
  const instance = `Google-Home-Mini-${id}._googlecast._tcp.local`;
  const target = `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}.local`;
  net.mdnsAnnounce(host, t0 + rng.int(2_000_000, 3_500_000), [
    { name: '_googlecast._tcp.local', type: 'PTR', ttl: 120, target: instance },
    { name: instance, type: 'TXT', ttl: 4500, cacheFlush: true, entries: [
      `id=${id}`, `cd=${id.slice(0, 32).toUpperCase()}`, 'rm=', 've=05', 'md=Google Home Mini', 'ic=/setup/icon.png',
      `fn=${device.name ?? 'Kitchen'}`, 'ca=199172', 'st=0', 'bs=FA8FCA7EE8C5', 'nf=1', 'rs=' ] },
    { name: instance, type: 'SRV', ttl: 120, target, port: 8009, cacheFlush: true },
  ], [{ name: target, type: 'A', ttl: 120, address: device.ip, cacheFlush: true }]);

  const checks = deviceRng(scenario, device, 'nest-checks');
  for (let t = t0 + checks.int(5_000_000, 60_000_000); t < net.endUs; t += checks.int(58_000_000, 62_000_000)) {
    net.http(host, checks, 'connectivitycheck.gstatic.com', '/generate_204', t, `HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nDate: ${new Date(t / 1000).toUTCString()}\r\n\r\n`);
  }
  for (const a of scenario.activations) if (a.device === device.mac) renderNestActivation(net, scenario, host, a);
}

/** One QUIC connection: lookup, Initial and handshake before `start`, the upload, the answer. */
function renderNestActivation(net: Net, scenario: Scenario, host: Host, activation: ScenarioActivation): void {
  const { start, durationMs, bytesUp } = activation;
  const rng = new Rng(hashLabel(scenario.seed, `nest-quic:${activation.device}:${start}`));
  const startUs = start * 1000;
  const { address } = net.lookup(host, rng, startUs - rng.int(600_000, 800_000), 'www.google.com');
  const server = net.remote(address);
  const port = net.ephemeralPort(host);
  const rttUs = rng.int(15_000, 45_000);
  const ids = newConnectionIds(rng);
  const up = (t: number, payload: Buffer) => net.udp(host, server, port, 443, t, payload);
  const down = (t: number, payload: Buffer) => net.udpFromRemote(server, host, 443, port, t, payload);
  let t = startUs - rng.int(400_000, 500_000);
  up(t, clientInitialDatagram(rng, ids, 'www.google.com'));
  t += rttUs;
  down(t, serverInitialDatagram(rng, ids, 1200));
  for (let i = 0; i < 2; i++) down(t + 200 * (i + 1), serverHandshakeDatagram(rng, ids, rng.int(900, 1200)));
  up(t + 2000, shortHeaderDatagram(rng, ids.serverCid, rng.int(60, 90)));

  /** A burst of datagrams from one side, answered with a small ACK packet per two. */
  const burst = (fromClient: boolean, at: number, bytes: number) => {
    const sizes: number[] = [];
    // the upload plan keeps every datagram at least QUIC_TRANSPORT.minLast; answers are rounded up to it
    for (let left = bytes; left > 0; left -= sizes[sizes.length - 1]) sizes.push(Math.max(QUIC_TRANSPORT.minLast, Math.min(QUIC_TRANSPORT.maxPayload, left)));
    sizes.forEach((size, i) => {
      const when = at + i * 110;
      if (fromClient) up(when, shortHeaderDatagram(rng, ids.serverCid, size));
      else down(when, shortHeaderDatagram(rng, ids.clientCid, size));
      if (i % 2 === 1 || i === sizes.length - 1) {
        if (fromClient) down(when + rttUs, shortHeaderDatagram(rng, ids.clientCid, rng.int(40, 60)));
        else up(when + 1000, shortHeaderDatagram(rng, ids.serverCid, rng.int(40, 50)));
      }
    });
  };
  const { profile, transport } = voiceChannel('nest');
  for (const w of uploadWrites(start, durationMs, bytesUp, profile, transport)) burst(true, w.atMs * 1000, w.payload);
  const answer = answerPlan(scenario.seed, activation, 'nest');
  if (answer) for (const w of answerWrites(answer.start, answer.durationMs, answer.bytesDown)) burst(false, w.atUs, w.payload);
}
