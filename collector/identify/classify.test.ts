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

  it('speaker announcements: HomePod, Google Home, Sonos', () => {
    expect(classify(device((d) => { d.ouiVendor = 'apple'; d.mdnsModel = 'AudioAccessory5,1'; }))).toMatchObject({ assistant: true, model: 'HomePod (AudioAccessory5,1)' });
    expect(classify(device((d) => { d.ouiVendor = 'google'; d.mdnsModel = 'Google Home Mini'; })).assistant).toBe(true);
    expect(classify(device((d) => { d.ouiVendor = 'google'; d.mdnsModel = 'Chromecast'; })).assistant).toBe(false);
    expect(classify(device((d) => { d.randomized = true; d.ssdpServer = 'Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)'; d.ssdpTypes.add('urn:schemas-upnp-org:device:ZonePlayer:1'); }))).toMatchObject({ vendor: 'sonos', assistant: true });
  });
});
