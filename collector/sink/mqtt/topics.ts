/**
 * The MQTT topics earshot uses, all made once from the config: availability, activation events, one
 * retained state per assistant, the wake-event topic it listens to, and Home Assistant's discovery.
 */
import { DEFAULT_MQTT_PREFIX, type Config } from '../../config.js';

export interface MqttTopics {
  /** Availability: `online` (retained) while connected, `offline` as Last Will and on close. */
  status: string;
  /** Every activation event (not retained). */
  activation: string;
  /** Every finished call (not retained). */
  call: string;
  /** Notices the config asks for (mqtt.notices; not retained). */
  notice: string;
  /** Wake events in (may hold + and # wildcards). */
  wake: string;
  /** The owner's presence in: {"away": true|false}. */
  presence: string;
  /**
   * The topics wake events and presence came in on before topics had the site (earshot/wake,
   * earshot/presence; the Home Assistant blueprint's default), still read with the default prefix so an
   * upgraded home keeps its wake events; null otherwise (docs/mqtt.md, docs/fleet.md).
   */
  legacyWake: string | null;
  legacyPresence: string | null;
  /** Retained states of all devices, for reading them back after a restart. */
  stateWildcard: string;
  /** Home Assistant's own status (birth `online`): discovery is sent again when it comes up. */
  homeAssistantStatus: string;
  /** Retained state of one device. */
  deviceState(key: string): string;
  /** The device a state topic belongs to (its key), or null for another topic. */
  deviceKeyOf(topic: string): string | null;
  /** Discovery config topic of one entity. */
  discovery(component: string, uniqueId: string): string;
  /** True for a topic earshot publishes (status, activation, call, notice, device states). */
  isOwn(topic: string): boolean;
  /** Prefix made safe for ids (unique_id, identifiers): [a-zA-Z0-9_-] only. */
  idPrefix: string;
}

/** A MAC (or any device key) reduced to lower-case letters and digits: aa:bb:cc:dd:ee:ff -> aabbccddeeff. */
export function deviceKey(mac: string): string {
  return mac.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const LEGACY_WAKE = 'earshot/wake';
const LEGACY_PRESENCE = 'earshot/presence';

/** Topics for `config.mqtt` at `site` ({site} in the prefix stands for it). */
export function mqttTopics(mqtt: Readonly<Config['mqtt']>, site: string): MqttTopics {
  // a site name is one plain topic level ([a-z0-9_-], collector/site.ts)
  const prefix = mqtt.prefix.replaceAll('{site}', site).replace(/\/+$/, '');
  const discoveryPrefix = mqtt.discoveryPrefix.replace(/\/+$/, '');
  const statePrefix = `${prefix}/device/`;
  const legacy = mqtt.prefix === DEFAULT_MQTT_PREFIX;
  const idPrefix = prefix.replace(/[^a-zA-Z0-9_-]+/g, '_');
  /** A discovery config earshot publishes: DISCOVERY/<component>/<idPrefix>_<key>_<entity>/config. */
  const isOwnDiscovery = (topic: string): boolean => {
    if (!topic.startsWith(`${discoveryPrefix}/`) || !topic.endsWith('/config')) return false;
    const levels = topic.slice(discoveryPrefix.length + 1).split('/');
    return levels.length === 3 && levels[1].startsWith(`${idPrefix}_`);
  };
  return {
    status: `${prefix}/status`,
    activation: `${prefix}/activation`,
    call: `${prefix}/call`,
    notice: `${prefix}/notice`,
    wake: mqtt.wakeTopic ?? `${prefix}/wake`,
    presence: `${prefix}/presence`,
    legacyWake: legacy && mqtt.wakeTopic === null ? LEGACY_WAKE : null,
    legacyPresence: legacy ? LEGACY_PRESENCE : null,
    stateWildcard: `${statePrefix}+/state`,
    homeAssistantStatus: `${discoveryPrefix}/status`,
    deviceState: (key) => `${statePrefix}${key}/state`,
    deviceKeyOf(topic) {
      if (!topic.startsWith(statePrefix) || !topic.endsWith('/state')) return null;
      const key = topic.slice(statePrefix.length, -'/state'.length);
      return /^[a-z0-9]+$/.test(key) ? key : null;
    },
    isOwn: (topic) => topic === `${prefix}/status` || topic === `${prefix}/activation` || topic === `${prefix}/call` || topic === `${prefix}/notice` || topic.startsWith(statePrefix)
      || isOwnDiscovery(topic),
    discovery: (component, uniqueId) => `${discoveryPrefix}/${component}/${uniqueId}/config`,
    idPrefix,
  };
}

/** True when `topic` matches the subscription `filter` (MQTT wildcards + and #). */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    // '#' also matches the parent level: a/# matches a
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
