/**
 * Home Assistant MQTT discovery: the retained config messages that make each voice assistant a device in
 * Home Assistant with five entities, all reading the device's one retained state topic
 * (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery).
 *
 * Keys follow Home Assistant's schema: a null must never be sent for an optional string (manufacturer,
 * model), because the whole config is then rejected, so absent values are left out. Both `object_id`
 * (before 2025.10) and `default_entity_id` (2025.10 on; object_id stops working in 2026.4) are sent:
 * discovery schemas drop keys they do not know, and with default_entity_id present newer versions do
 * not warn about object_id.
 */
import type { EventDevice } from '../events.js';
import { printable } from '../../text.js';
import type { MqttTopics } from './topics.js';

/** One entity of an assistant. */
interface EntitySpec {
  /** Last part of unique_id and entity id. */
  key: string;
  component: 'binary_sensor' | 'sensor';
  name: string;
  fields: Record<string, unknown>;
}

/** The daily counters reset at local midnight (detect.timeZone); see docs/mqtt.md for why `total`. */
function dailyCounter(field: string): Record<string, unknown> {
  return {
    value_template: `{{ value_json.${field} }}`,
    state_class: 'total',
    last_reset_value_template: '{{ value_json.last_reset }}',
    suggested_display_precision: 0,
  };
}

function entities(stateTopic: string): EntitySpec[] {
  return [
    {
      key: 'listening',
      component: 'binary_sensor',
      name: 'Listening',
      fields: {
        device_class: 'sound',
        value_template: "{{ 'ON' if value_json.listening else 'OFF' }}",
        json_attributes_topic: stateTopic,
        json_attributes_template: '{{ {"mac": value_json.mac, "vendor": value_json.vendor, "model": value_json.model} | tojson }}',
      },
    },
    {
      key: 'last_activation',
      component: 'sensor',
      name: 'Last activation',
      fields: { device_class: 'timestamp', value_template: '{{ value_json.last_activation }}' },
    },
    {
      key: 'last_suspected',
      component: 'sensor',
      name: 'Last suspected activation',
      fields: {
        device_class: 'timestamp',
        value_template: '{{ value_json.last_suspected }}',
        json_attributes_topic: stateTopic,
        json_attributes_template: '{{ (value_json.last_suspected_activation or {}) | tojson }}',
      },
    },
    { key: 'activations_today', component: 'sensor', name: 'Activations today', fields: { ...dailyCounter('activations_today'), icon: 'mdi:microphone' } },
    { key: 'suspected_today', component: 'sensor', name: 'Suspected today', fields: { ...dailyCounter('suspected_today'), icon: 'mdi:microphone-question' } },
  ];
}

/** A device's display name: its own, else its vendor (or "Voice assistant") and the end of its MAC. */
export function displayName(device: Pick<EventDevice, 'mac' | 'name' | 'vendor'>): string {
  // a name from mDNS or DHCP is shown in Home Assistant's UI: control characters escaped, as everywhere
  return printable(device.name ?? `${device.vendor ?? 'Voice assistant'} ${device.mac.slice(-8)}`);
}

export interface DiscoveryMessage {
  topic: string;
  /** JSON config; '' removes the entity. */
  payload: string;
}

export interface DiscoveryOptions {
  topics: MqttTopics;
  /** earshot's version for origin.sw_version, when known. */
  version?: string;
}

/** The discovery configs of one assistant (retained). */
export function discoveryMessages(device: EventDevice, key: string, options: DiscoveryOptions): DiscoveryMessage[] {
  const { topics } = options;
  const stateTopic = topics.deviceState(key);
  const deviceInfo: Record<string, unknown> = {
    identifiers: [`${topics.idPrefix}_${key}`],
    connections: [['mac', device.mac.toLowerCase()]],
    name: displayName(device),
  };
  if (device.vendor) deviceInfo.manufacturer = printable(device.vendor);
  if (device.model) deviceInfo.model = printable(device.model);
  const origin: Record<string, unknown> = { name: 'earshot' };
  if (options.version) origin.sw_version = options.version;
  return entities(stateTopic).map((entity) => {
    const uniqueId = `${topics.idPrefix}_${key}_${entity.key}`;
    const config = {
      name: entity.name,
      unique_id: uniqueId,
      object_id: uniqueId,
      default_entity_id: `${entity.component}.${uniqueId}`,
      state_topic: stateTopic,
      availability_topic: topics.status,
      ...entity.fields,
      device: deviceInfo,
      origin,
    };
    return { topic: topics.discovery(entity.component, uniqueId), payload: JSON.stringify(config) };
  });
}

/** Empty retained configs that remove a device's entities from Home Assistant. */
export function removalMessages(key: string, topics: MqttTopics): DiscoveryMessage[] {
  return entities(topics.deviceState(key)).map((entity) => ({ topic: topics.discovery(entity.component, `${topics.idPrefix}_${key}_${entity.key}`), payload: '' }));
}

/** What a device's discovery depends on: when it changes, the configs are published again. */
export function discoverySignature(device: EventDevice): string {
  return JSON.stringify([device.mac.toLowerCase(), device.name, device.vendor, device.model]);
}
