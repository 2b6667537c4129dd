import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { Device } from './device.js';

function device(setup: (d: Device) => void): Device {
  const d = new Device(0x68dbf5901964, '68:db:f5:90:19:64');
  setup(d);
  return d;
}

describe('assistant classification', () => {
  it('a vendor alone is not enough', () => {
    expect(classify(device((d) => { d.ouiVendor = 'amazon'; d.organization = 'Amazon Technologies Inc.'; })).assistant).toBe(false);
  });

  it('a voice connection or voice endpoints make an Amazon device an assistant, with evidence', () => {
    const v = classify(device((d) => { d.ouiVendor = 'amazon'; d.voiceServers.add('52.94.233.109:443'); }));
    expect(v.assistant).toBe(true);
    expect(v.evidence.join('; ')).toMatch(/persistent voice connection to 52\.94\.233\.109:443/);
    expect(classify(device((d) => { d.ouiVendor = 'amazon'; d.voiceNames.add('avs-alexa-4-na.amazon.com'); })).assistant).toBe(true);
  });

  it('two weaker signs together are enough: Echo host name and Echo endpoints', () => {
    const v = classify(device((d) => { d.ouiVendor = 'amazon'; d.dhcpHostName = 'amazon-0d0fb5957'; d.vendorEndpoints.add('pindorama.amazon.com'); }));
    expect(v).toMatchObject({ assistant: true, name: 'amazon-0d0fb5957' });
  });

  it('phones, tablets, Fire TVs and computers are not assistants, even with voice traffic', () => {
    for (const name of ['android-7f3a9c', 'Kindle-Fire', 'iPhone-de-Lucas', 'AFTMM', 'MacBook-Pro']) {
      expect(classify(device((d) => { d.ouiVendor = 'amazon'; d.dhcpHostName = name; d.voiceNames.add('avs-alexa-4-na.amazon.com'); })).assistant, name).toBe(false);
    }
    const browsing = device((d) => { d.ouiVendor = 'google'; d.voiceNames.add('assistant-s3-pa.googleapis.com'); for (let i = 0; i < 12; i++) d.otherDomains.add(`site${i}.example`); });
    expect(classify(browsing).assistant).toBe(false);
  });

  it('vendors that make no assistants never are, unless configured', () => {
    expect(classify(device((d) => { d.ouiVendor = 'lg'; d.voiceNames.add('pitangui.amazon.com'); })).assistant).toBe(false);
    expect(classify(device((d) => { d.ouiVendor = 'lg'; d.configAssistant = true; d.configName = 'Kitchen'; })).assistant).toBe(true);
    expect(classify(device((d) => { d.ouiVendor = 'amazon'; d.voiceServers.add('52.94.1.1:443'); d.configAssistant = false; })).assistant).toBe(false);
  });

  it('speaker announcements count beside traffic to the vendor\'s cloud: HomePod, Google Home, Sonos, Echo host name', () => {
    const cloud = (d: Device, name: string) => d.vendorEndpoints.add(name);
    expect(classify(device((d) => { d.ouiVendor = 'apple'; d.mdnsModel = 'AudioAccessory5,1'; cloud(d, 'init.ess.apple.com'); }))).toMatchObject({ assistant: true, model: 'HomePod (AudioAccessory5,1)' });
    expect(classify(device((d) => { d.ouiVendor = 'google'; d.mdnsModel = 'Google Home Mini'; cloud(d, 'clients3.google.com'); })).assistant).toBe(true);
    expect(classify(device((d) => { d.ouiVendor = 'google'; d.mdnsModel = 'Chromecast'; cloud(d, 'clients3.google.com'); })).assistant).toBe(false);
    expect(classify(device((d) => { d.randomized = true; d.ssdpServer = 'Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)'; d.ssdpTypes.add('urn:schemas-upnp-org:device:ZonePlayer:1'); d.persistentVendorConnection = '54.1.2.3:443'; }))).toMatchObject({ vendor: 'sonos', assistant: true });
  });

  it('an announcement alone makes no assistant: anyone on the LAN can forge one from any MAC (issue 14)', () => {
    const alone: Array<[string, (d: Device) => void]> = [
      ['HomePod model', (d) => { d.ouiVendor = 'apple'; d.mdnsModel = 'AudioAccessory5,1'; }],
      ['Google Cast model', (d) => { d.ouiVendor = 'google'; d.mdnsModel = 'Google Home Mini'; }],
      ['Sonos service', (d) => { d.ouiVendor = 'sonos'; d.mdnsServices.add('_sonos._tcp.local'); }],
      ['ZonePlayer', (d) => { d.randomized = true; d.ssdpServer = 'Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)'; d.ssdpTypes.add('urn:schemas-upnp-org:device:ZonePlayer:1'); }],
      ['all of them at once', (d) => {
        d.ouiVendor = 'amazon'; d.dhcpHostName = 'amazon-0d0fb5957'; d.mdnsModel = 'AudioAccessory5,1';
        d.mdnsServices.add('_sonos._tcp.local'); d.ssdpTypes.add('urn:schemas-upnp-org:device:ZonePlayer:1');
      }],
    ];
    for (const [what, setup] of alone) {
      const v = classify(device(setup));
      expect(v.assistant, what).toBe(false);
      expect(v.evidence.join('; '), what).toMatch(/not counted: no traffic to the vendor's cloud seen/);
    }
    // the owner's word still makes one
    expect(classify(device((d) => { d.ouiVendor = 'apple'; d.mdnsModel = 'AudioAccessory5,1'; d.configAssistant = true; })).assistant).toBe(true);
  });
});
