/**
 * Traffic of the devices that are not voice assistants (or are silent ones): a Sonos speaker that
 * announces itself and talks to Sonos's cloud, a phone that browses widely and uses the Alexa app
 * (pitangui.amazon.com), a TV that streams video, a laptop that browses. They are there so that a
 * detector and the device classifier see the noise of a real household.
 */
import { deviceRng, hostOf } from './assistants.js';
import type { Net } from './network.js';
import type { Rng } from './rng.js';
import { applicationData } from './tls.js';
import type { Scenario, ScenarioDevice } from './types.js';

/** Sites a person browses: none of them a speaker vendor's device endpoints. */
const SITES = [
  'www.wikipedia.org', 'www.bbc.co.uk', 'github.com', 'www.reddit.com', 'news.ycombinator.com', 'www.nytimes.com',
  'stackoverflow.com', 'www.theguardian.com', 'www.spotify.com', 'www.mozilla.org', 'www.cloudflare.com',
  'www.instagram.com', 'www.linkedin.com', 'www.booking.com', 'www.weather.com', 'www.imdb.com', 'duckduckgo.com',
];

/** Visits a random site every `minS`–`maxS` seconds: lookup, TLS with SNI, a page's worth of download. */
function browse(net: Net, rng: Rng, device: ScenarioDevice, minS: number, maxS: number): void {
  const host = hostOf(device);
  for (let t = net.startUs + rng.int(10, 60) * 1e6; t < net.endUs; t += rng.int(minS, maxS) * 1e6) {
    net.https(host, rng, rng.pick(SITES), t, rng.int(500, 2500), rng.int(20_000, 150_000));
  }
}

/** Sonos speaker: _sonos._tcp announcements and small uploads to its cloud. */
export function renderSonos(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'sonos');
  const host = hostOf(device);
  const mac = device.mac.replace(/:/g, '').toUpperCase();
  const player = `RINCON_${mac}01400`;
  const hostName = `Sonos-${mac}.local`;
  net.dhcp(host, rng, net.startUs + rng.int(200_000, 2_000_000), { hostName: 'SonosZP', vendorClass: null, parameterList: [1, 3, 6, 12, 15, 28, 42] });
  const instance = `${player}@${device.name ?? 'Office'}._sonos._tcp.local`;
  net.mdnsAnnounce(host, net.startUs + rng.int(2_500_000, 4_000_000), [
    { name: '_sonos._tcp.local', type: 'PTR', ttl: 4500, target: instance },
    { name: instance, type: 'SRV', ttl: 120, target: hostName, port: 1443, cacheFlush: true },
    { name: instance, type: 'TXT', ttl: 4500, cacheFlush: true, entries: [
      `info=/api/v1/players/${player}/info`, 'vers=3', 'protovers=1.24.1', `mhhid=Sonos_${rng.hex(24)}`, `locationid=lc_${rng.hex(32)}` ] },
  ], [{ name: hostName, type: 'A', ttl: 120, address: device.ip, cacheFlush: true }]);
  for (let t = net.startUs + rng.int(30, 120) * 1e6; t < net.endUs; t += rng.int(600, 1200) * 1e6) {
    net.https(host, rng, 'msmetrics.ws.sonos.com', t, rng.int(1500, 4000), rng.int(400, 1200));
  }
}

/** Phone: Android by default, an iPhone when its name says so. Browses; opens the Alexa app now and then. */
export function renderPhone(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'phone');
  const host = hostOf(device);
  const t0 = net.startUs;
  if (/iphone/i.test(device.name ?? '')) {
    net.dhcp(host, rng, t0 + rng.int(200_000, 2_000_000), { hostName: 'iPhone', vendorClass: null, parameterList: [1, 121, 3, 6, 15, 108, 114, 119, 252] });
    const instance = `${device.name}._companion-link._tcp.local`;
    const hostName = `${(device.name ?? 'iPhone').replace(/[^A-Za-z0-9]+/g, '-')}.local`;
    net.mdnsAnnounce(host, t0 + rng.int(2_500_000, 4_000_000), [
      { name: '_companion-link._tcp.local', type: 'PTR', ttl: 4500, target: instance },
      { name: instance, type: 'SRV', ttl: 120, target: hostName, port: 49152, cacheFlush: true },
      { name: instance, type: 'TXT', ttl: 4500, entries: ['rpMac=0', `rpHN=${rng.hex(12)}`, 'rpFl=0x20000', 'rpVr=360.4'], cacheFlush: true },
    ], [{ name: hostName, type: 'A', ttl: 120, address: device.ip, cacheFlush: true }]);
  } else {
    net.dhcp(host, rng, t0 + rng.int(200_000, 2_000_000), {
      hostName: `android-${rng.hex(16)}`, vendorClass: 'android-dhcp-13', parameterList: [1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114],
    });
    // the Google Home app looks for Cast devices
    net.mdnsBrowse(host, t0 + rng.int(3_000_000, 5_000_000), ['_googlecast._tcp.local']);
  }
  browse(net, rng, device, 60, 360);
  const alexa = deviceRng(scenario, device, 'phone-alexa-app');
  for (let t = t0 + alexa.int(20, 120) * 1e6; t < net.endUs; t += alexa.int(300, 900) * 1e6) {
    net.https(host, alexa, 'pitangui.amazon.com', t, alexa.int(1000, 3000), alexa.int(5000, 30_000));
  }
}

/** TV: one streaming session of video segments every few seconds over one TLS connection. */
export function renderTv(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'tv');
  const host = hostOf(device);
  const t0 = net.startUs;
  net.dhcp(host, rng, t0 + rng.int(200_000, 2_000_000), { hostName: 'LGwebOSTV', vendorClass: 'udhcp 1.30.1', parameterList: [1, 3, 6, 12, 15, 28, 42] });
  const captureS = (net.endUs - t0) / 1e6;
  const sessionS = Math.min(1200, captureS * 0.5);
  const begin = t0 + rng.int(20, Math.max(21, Math.floor(captureS * 0.3))) * 1e6;
  const cdn = `ipv4-c0${rng.int(10, 99)}-fra00${rng.int(1, 9)}-ix.1.oca.nflxvideo.net`;
  const { address, readyUs } = net.lookup(host, rng, begin, cdn);
  const session = net.tls(host, rng, cdn, address, readyUs + 500);
  let t = session.readyUs;
  const end = Math.min(net.endUs, begin + sessionS * 1e6);
  while (t < end) {
    const requested = session.stream.write('up', t, applicationData(rng, rng.int(400, 800)));
    net.download(session.stream, rng, requested + session.rttUs, rng.int(80_000, 160_000));
    t += rng.int(8, 12) * 1e6;
  }
  session.stream.close(t);
}

/** Laptop: Windows, browses. */
export function renderLaptop(net: Net, scenario: Scenario, device: ScenarioDevice): void {
  const rng = deviceRng(scenario, device, 'laptop');
  net.dhcp(hostOf(device), rng, net.startUs + rng.int(200_000, 2_000_000), {
    hostName: `LAPTOP-${rng.hex(7).toUpperCase()}`, vendorClass: 'MSFT 5.0', parameterList: [1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252],
  });
  browse(net, rng, device, 120, 600);
}
