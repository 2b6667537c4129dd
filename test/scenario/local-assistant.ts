/**
 * A GENERATED capture of a home with a local assistant (no real capture of one exists in ../shared: none
 * of them has Wyoming ports 10200-10700, the ESPHome API 6053, MQTT 1883 or _wyoming/_esphomelib/
 * _home-assistant mDNS). Built from the public protocol descriptions, not from a recording:
 *   - a Home Assistant server (192.168.1.10) announcing _home-assistant._tcp over mDNS;
 *   - a Wyoming voice satellite (192.168.1.30) announcing _wyoming._tcp (port 10700, as wyoming-satellite
 *     registers itself with zeroconf); Home Assistant connects to it, sends describe and gets an info
 *     event naming a satellite, sends run-satellite, and the satellite answers run-pipeline
 *     (github.com/rhasspy/wyoming README "Event Flow"; wyoming-satellite __main__.py);
 *   - a wake: the satellite sends detection ("ok_nabu"), audio-start, 3 s of 16 kHz 16-bit mono audio in
 *     1024-byte audio-chunk events (32 kB/s, one every 32 ms), audio-stop; Home Assistant answers with
 *     transcript, then a text-to-speech reply (synthesize, audio-start, chunks, audio-stop) to play;
 *   - an ESPHome voice device (192.168.1.40) announcing _esphomelib._tcp, with Home Assistant's API
 *     connection to it on TCP 6053 (plaintext preamble 0x00), and a later 2-s audio stream over UDP to
 *     Home Assistant (home-assistant/core esphome/voice_assistant.py: VoiceAssistantUDPServer);
 *   - a Rhasspy satellite (192.168.1.50) connected to the MQTT broker on the Home Assistant host (TCP
 *     1883, MQTT 3.1.1), publishing hermes/hotword/<id>/detected and then 2 s of WAV chunks to
 *     hermes/audioServer/<siteId>/audioFrame (Rhasspy's Hermes protocol, rhasspy.readthedocs.io MQTT API);
 *   - variant 'cloud': during the satellite's stream Home Assistant resolves and opens TLS (SNI) to a
 *     cloud speech-to-text service and uploads as much as the satellite sent.
 * The truth (what was put in) comes back with the frames, for tests to compare earshot's report with.
 */
import { dnsQuery, dnsResponse, mdnsAnnouncement, type DnsRecord } from './messages.js';
import { type Host, multicastMac, parseIp, parseMac, Timeline, udpFrame } from './packets.js';
import { pcapBytes } from './pcap-writer.js';
import { Rng } from './rng.js';
import { TcpStream } from './tcp-stream.js';
import { applicationData, clientFinished, clientHelloRecord, serverFlight } from './tls.js';

/**
 * home: the voice stays; cloud: Home Assistant opens a cloud STT connection during the stream;
 * cloud-early: it opens it 0.6 s before the first audio, and the capture starts 4 s in (after the
 * announcements and the satellite's setup: a capture begun mid-session).
 */
export type LocalVariant = 'home' | 'cloud' | 'cloud-early';

/** What the generator put in: the independent source for tests. */
export interface LocalTruth {
  server: { mac: string; ip: string };
  satellite: { mac: string; ip: string; port: number };
  esphome: { mac: string; ip: string };
  /** The satellite's stream: first audio-chunk and audio-stop times (µs), chunks and audio payload bytes. */
  wyoming: { wakeUs: number; firstChunkUs: number; stopUs: number; chunks: number; audioBytes: number; wakeWord: string };
  /** The ESPHome device's UDP stream to Home Assistant. */
  esphomeAudio: { firstUs: number; lastUs: number; datagrams: number; audioBytes: number; serverPort: number };
  /** The Rhasspy satellite's audio frames over MQTT (payload: WAV header + PCM). */
  rhasspy: { mac: string; ip: string; wakeUs: number; firstUs: number; lastUs: number; frames: number; audioBytes: number; wakeWord: string };
  /** The cloud STT connection of the 'cloud' variant (null in 'home'). */
  cloud: { name: string; ip: string; startUs: number } | null;
}

export const LOCAL_T0_US = Date.UTC(2026, 10, 1, 10, 0, 0) * 1000;
export const CLOUD_STT_NAME = 'speech.googleapis.com';
const CHUNK_BYTES = 1024;
const CHUNK_INTERVAL_US = 32_000;
const STREAM_US = 3_000_000;

const router: Host = { mac: parseMac('02:00:00:00:00:01'), ip: parseIp('192.168.1.1') };
const ha: Host = { mac: parseMac('dc:a6:32:10:00:10'), ip: parseIp('192.168.1.10') };
const satellite: Host = { mac: parseMac('dc:a6:32:30:00:30'), ip: parseIp('192.168.1.30') };
const esphome: Host = { mac: parseMac('24:0a:c4:40:00:40'), ip: parseIp('192.168.1.40') };
const rhasspy: Host = { mac: parseMac('b8:27:eb:50:00:50'), ip: parseIp('192.168.1.50') };
const MDNS_GROUP = parseIp('224.0.0.251');

/** An MQTT 3.1.1 control packet: the fixed header byte, the remaining length as a varint, the rest (OASIS mqtt-v3.1.1 §2.2). */
function mqttPacket(first: number, body: Buffer): Buffer {
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...length]), body]);
}

/** A QoS 0 PUBLISH (§3.3): the topic as a 2-byte length and UTF-8, then the payload. */
function mqttPublish(topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(t.length);
  return mqttPacket(0x30, Buffer.concat([len, t, payload]));
}

/** A 44-byte WAV header for `dataBytes` of 16 kHz 16-bit mono PCM (a Hermes audioFrame is a small WAV file). */
function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(32000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * `bytes` of 16-bit little-endian mono PCM: a quiet voice-band tone with noise. Audio-like on purpose:
 * random bytes would now and then look like RTCP to tshark's heuristics and be flagged as malformed.
 */
function pcm(rng: Rng, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  const phase = rng.float(0, 2 * Math.PI);
  for (let i = 0; i + 1 < bytes; i += 2) out.writeInt16LE(Math.round(2500 * Math.sin(phase + (i / 2) * 0.173) + rng.int(-300, 300)), i);
  return out;
}

/** A Wyoming event: the JSON header line, the data section, the payload (github.com/rhasspy/wyoming "Format"). */
function wyoming(type: string, data: Record<string, unknown> | null, payload: Buffer = Buffer.alloc(0), dataSection: Record<string, unknown> | null = null): Buffer {
  const extra = dataSection === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(dataSection), 'utf8');
  const header: Record<string, unknown> = { type };
  if (data !== null) header.data = data;
  if (extra.length > 0) header.data_length = extra.length;
  if (payload.length > 0) header.payload_length = payload.length;
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), extra, payload]);
}

function mdns(timeline: Timeline, host: Host, timeUs: number, answers: DnsRecord[], additionals: DnsRecord[]): void {
  const frame = udpFrame({ srcMac: host.mac, dstMac: multicastMac(MDNS_GROUP), src: host.ip, dst: MDNS_GROUP, ttl: 255, ipId: timeline.nextIpId(host.ip) }, 5353, 5353, mdnsAnnouncement(answers, additionals));
  timeline.add(timeUs, frame);
}

/** Builds the scenario's frames (in capture order) and its truth. */
export function generateLocalAssistant(variant: LocalVariant, seed = 17): { frames: Array<{ timeUs: number; frame: Buffer }>; truth: LocalTruth } {
  const rng = new Rng(seed);
  const tl = new Timeline();
  const t0 = LOCAL_T0_US;

  // mDNS: who is who, as each announces itself
  mdns(tl, ha, t0 + 100_000, [
    { name: '_home-assistant._tcp.local', type: 'PTR', ttl: 4500, target: 'Home._home-assistant._tcp.local' },
    { name: 'Home._home-assistant._tcp.local', type: 'SRV', ttl: 120, target: 'homeassistant.local', port: 8123, cacheFlush: true },
    { name: 'Home._home-assistant._tcp.local', type: 'TXT', ttl: 4500, entries: ['location_name=Home', 'version=2024.12.0', 'base_url=http://192.168.1.10:8123', 'requires_api_password=True'], cacheFlush: true },
  ], [{ name: 'homeassistant.local', type: 'A', ttl: 120, address: '192.168.1.10', cacheFlush: true }]);
  mdns(tl, satellite, t0 + 200_000, [
    { name: '_wyoming._tcp.local', type: 'PTR', ttl: 4500, target: 'dca632300030._wyoming._tcp.local' },
    { name: 'dca632300030._wyoming._tcp.local', type: 'SRV', ttl: 120, target: 'kitchen-satellite.local', port: 10700, cacheFlush: true },
    { name: 'dca632300030._wyoming._tcp.local', type: 'TXT', ttl: 4500, entries: [''], cacheFlush: true },
  ], [{ name: 'kitchen-satellite.local', type: 'A', ttl: 120, address: '192.168.1.30', cacheFlush: true }]);
  mdns(tl, esphome, t0 + 300_000, [
    { name: '_esphomelib._tcp.local', type: 'PTR', ttl: 4500, target: 'living-room-voice._esphomelib._tcp.local' },
    { name: 'living-room-voice._esphomelib._tcp.local', type: 'SRV', ttl: 120, target: 'living-room-voice.local', port: 6053, cacheFlush: true },
    { name: 'living-room-voice._esphomelib._tcp.local', type: 'TXT', ttl: 4500, entries: ['friendly_name=Living Room Voice', 'version=2024.12.2', 'mac=240ac4400040', 'platform=ESP32', 'network=wifi'], cacheFlush: true },
  ], [{ name: 'living-room-voice.local', type: 'A', ttl: 120, address: '192.168.1.40', cacheFlush: true }]);

  // Home Assistant runs the satellite: describe/info, run-satellite/run-pipeline
  const sat = new TcpStream({ client: ha, server: satellite, clientPort: 41234, serverPort: 10700, clientIsn: rng.int(1, 2 ** 31), serverIsn: rng.int(1, 2 ** 31), serverAckDelayUs: 2000, clientAckDelayUs: 2000 });
  let t = sat.open(t0 + 1_000_000);
  t = sat.write('up', t, wyoming('describe', null));
  t = sat.write('down', t + 3000, wyoming('info', null, undefined, {
    satellite: { name: 'Kitchen satellite', area: 'Kitchen', description: 'Kitchen satellite', attribution: { name: '', url: '' }, installed: true },
  }));
  t = sat.write('up', t + 3000, wyoming('run-satellite', null));
  sat.write('down', t + 3000, wyoming('run-pipeline', null, undefined, { start_stage: 'asr', end_stage: 'tts', restart_on_end: false }));

  // the wake and the 3-s command
  const wakeUs = t0 + 5_000_000;
  sat.write('down', wakeUs, wyoming('detection', null, undefined, { name: 'ok_nabu', timestamp: 5000 }));
  sat.write('down', wakeUs + 2000, wyoming('audio-start', { rate: 16000, width: 2, channels: 1, timestamp: 0 }));
  const firstChunkUs = wakeUs + 10_000;
  let chunks = 0;
  let audioBytes = 0;
  let chunkUs = firstChunkUs;
  for (; chunkUs < firstChunkUs + STREAM_US; chunkUs += CHUNK_INTERVAL_US) {
    sat.write('down', chunkUs, wyoming('audio-chunk', { rate: 16000, width: 2, channels: 1, timestamp: Math.round((chunkUs - firstChunkUs) / 1000) }, pcm(rng, CHUNK_BYTES)));
    chunks++;
    audioBytes += CHUNK_BYTES;
  }
  const stopUs = chunkUs;
  sat.write('down', stopUs, wyoming('audio-stop', { timestamp: Math.round((stopUs - firstChunkUs) / 1000) }));
  // the answer: the transcript, then the spoken reply (22.05 kHz, sent faster than it plays)
  let r = sat.write('up', stopUs + 400_000, wyoming('transcript', { text: 'turn on the kitchen light' }));
  r = sat.write('up', r + 50_000, wyoming('synthesize', { text: 'Turned on the light' }));
  r = sat.write('up', r + 200_000, wyoming('audio-start', { rate: 22050, width: 2, channels: 1 }));
  for (let i = 0; i < 40; i++) r = sat.write('up', r + 5000, wyoming('audio-chunk', { rate: 22050, width: 2, channels: 1 }, pcm(rng, 2048)));
  sat.write('up', r + 5000, wyoming('audio-stop', null));
  sat.flush(tl);

  // Home Assistant's ESPHome API connection (plaintext: a 0x00 preamble, esphome.io/components/api)
  const api = new TcpStream({ client: ha, server: esphome, clientPort: 50123, serverPort: 6053, clientIsn: rng.int(1, 2 ** 31), serverIsn: rng.int(1, 2 ** 31), serverAckDelayUs: 4000, clientAckDelayUs: 2000 });
  let a = api.open(t0 + 1_500_000);
  a = api.write('up', a, Buffer.from([0x00, 0x11, 0x01, 0x0a, 0x0f, ...Buffer.from('HomeAssistant 1'), 0x10, 0x01, 0x18, 0x0a]));
  api.write('down', a + 6000, Buffer.from([0x00, 0x0c, 0x02, 0x08, 0x01, 0x10, 0x0a, 0x1a, 0x06, ...Buffer.from('esphom')]));
  // a state update now and then: small, not audio
  for (let i = 1; i <= 20; i++) api.write('down', t0 + 1_500_000 + i * 4_000_000, Buffer.from([0x00, 0x09, 0x19, 0x0d, 0x33, 0x33, 0xa3, 0x41, 0x15, 0x00, 0x00]));
  api.flush(tl);

  // the ESPHome device's voice command, streamed over UDP to Home Assistant (70 s in: outside any cloud window)
  const udpPort = 43011;
  const esFirstUs = t0 + 70_000_000;
  let datagrams = 0;
  let esAudio = 0;
  let u = esFirstUs;
  for (; u < esFirstUs + 2_000_000; u += CHUNK_INTERVAL_US) {
    tl.add(u, udpFrame({ srcMac: esphome.mac, dstMac: ha.mac, src: esphome.ip, dst: ha.ip, ttl: 64, ipId: tl.nextIpId(esphome.ip) }, 6055, udpPort, pcm(rng, CHUNK_BYTES)));
    datagrams++;
    esAudio += CHUNK_BYTES;
  }
  const esLastUs = u - CHUNK_INTERVAL_US;

  // a Rhasspy satellite: its own wake word, then its microphone over MQTT to the broker on the Home Assistant host
  const mqtt = new TcpStream({ client: rhasspy, server: ha, clientPort: 39001, serverPort: 1883, clientIsn: rng.int(1, 2 ** 31), serverIsn: rng.int(1, 2 ** 31), serverAckDelayUs: 2000, clientAckDelayUs: 2000 });
  let m = mqtt.open(t0 + 2_000_000);
  // CONNECT (protocol "MQTT" level 4, clean session, keep-alive 60, client id) and CONNACK
  m = mqtt.write('up', m, mqttPacket(0x10, Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 7]), Buffer.from('bedroom', 'ascii')])));
  mqtt.write('down', m + 2000, mqttPacket(0x20, Buffer.from([0, 0])));
  const rhWakeUs = t0 + 100_000_000;
  mqtt.write('up', rhWakeUs, mqttPublish('hermes/hotword/porcupine/detected', Buffer.from(JSON.stringify({ modelId: 'porcupine', siteId: 'bedroom' }))));
  const rhFirstUs = rhWakeUs + 20_000;
  let frames = 0;
  let rhAudio = 0;
  let f = rhFirstUs;
  for (; f < rhFirstUs + 2_000_000; f += CHUNK_INTERVAL_US) {
    const payload = Buffer.concat([wavHeader(CHUNK_BYTES), pcm(rng, CHUNK_BYTES)]);
    mqtt.write('up', f, mqttPublish('hermes/audioServer/bedroom/audioFrame', payload));
    frames++;
    rhAudio += payload.length;
  }
  const rhLastUs = f - CHUNK_INTERVAL_US;
  mqtt.flush(tl);

  let cloud: LocalTruth['cloud'] = null;
  if (variant !== 'home') {
    // Home Assistant sends the satellite's audio to a cloud speech-to-text service while it streams
    const cloudIp = parseIp('142.250.74.42');
    const dnsUs = variant === 'cloud-early' ? firstChunkUs - 650_000 : firstChunkUs + 150_000;
    tl.add(dnsUs, udpFrame({ srcMac: ha.mac, dstMac: router.mac, src: ha.ip, dst: router.ip, ttl: 64, ipId: tl.nextIpId(ha.ip) }, 53011, 53, dnsQuery(0x4242, CLOUD_STT_NAME)));
    tl.add(dnsUs + 12_000, udpFrame({ srcMac: router.mac, dstMac: ha.mac, src: router.ip, dst: ha.ip, ttl: 64, ipId: tl.nextIpId(router.ip) }, 53, 53011,
      dnsResponse(0x4242, CLOUD_STT_NAME, 'A', [{ name: CLOUD_STT_NAME, type: 'A', ttl: 300, address: '142.250.74.42' }])));
    const tls = new TcpStream({ client: ha, server: { mac: router.mac, ip: cloudIp }, clientPort: 51515, serverPort: 443, clientIsn: rng.int(1, 2 ** 31), serverIsn: rng.int(1, 2 ** 31), serverAckDelayUs: 18_000 });
    const startUs = dnsUs + 20_000;
    let c = tls.open(startUs);
    const hello = clientHelloRecord(rng, CLOUD_STT_NAME);
    c = tls.write('up', c, hello);
    c = tls.write('down', c + 18_000, serverFlight(rng, hello, 3200));
    c = tls.write('up', c + 1000, clientFinished(rng));
    // the audio as it arrives, then the transcript back
    for (let w = c + 5000; w < stopUs + 100_000; w += 100_000) tls.write('up', w, applicationData(rng, 3300));
    tls.write('down', stopUs + 350_000, applicationData(rng, 420));
    tls.close(stopUs + 600_000);
    tls.flush(tl);
    cloud = { name: CLOUD_STT_NAME, ip: '142.250.74.42', startUs };
  }

  const startUs = variant === 'cloud-early' ? t0 + 4_000_000 : 0;
  return {
    frames: tl.sorted().filter((f) => f.timeUs >= startUs),
    truth: {
      server: { mac: 'dc:a6:32:10:00:10', ip: '192.168.1.10' },
      satellite: { mac: 'dc:a6:32:30:00:30', ip: '192.168.1.30', port: 10700 },
      esphome: { mac: '24:0a:c4:40:00:40', ip: '192.168.1.40' },
      wyoming: { wakeUs, firstChunkUs, stopUs, chunks, audioBytes, wakeWord: 'ok_nabu' },
      rhasspy: { mac: 'b8:27:eb:50:00:50', ip: '192.168.1.50', wakeUs: rhWakeUs, firstUs: rhFirstUs, lastUs: rhLastUs, frames, audioBytes: rhAudio, wakeWord: 'porcupine' },
      esphomeAudio: { firstUs: esFirstUs, lastUs: esLastUs, datagrams, audioBytes: esAudio, serverPort: udpPort },
      cloud,
    },
  };
}

/** The scenario as a pcap file image, and its truth. */
export function localAssistantPcap(variant: LocalVariant, seed = 17): { pcap: Buffer; truth: LocalTruth } {
  const { frames, truth } = generateLocalAssistant(variant, seed);
  return { pcap: pcapBytes(frames), truth };
}
