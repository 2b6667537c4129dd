/**
 * MQTT PUBLISH packets as Rhasspy's Hermes protocol uses them: a satellite's microphone publishes WAV
 * chunks to hermes/audioServer/<siteId>/audioFrame, wake word services publish
 * hermes/hotword/<wakewordId>/detected, speech recognition listens between hermes/asr/startListening
 * and stopListening (rhasspy.readthedocs.io/en/latest/reference/#mqtt-api). MQTT 3.1.1 framing (OASIS
 * mqtt-v3.1.1 §2.2, §3.3): a fixed header byte (type 3 in the high nibble), the remaining length as a
 * 1-4 byte varint, then the topic as a 2-byte length and UTF-8, the packet id when QoS > 0, the payload.
 *
 * Only packets that start inside the segment are read (the common case: one publish per write); a
 * packet running past the segment ends the reading, and what follows in the next segment is not a
 * header. Topics are bounded; nothing of the payload is read but its length.
 */

const PUBLISH = 3;
const MAX_TOPIC = 256;
/** Packets read per segment at most. */
const MAX_PER_SEGMENT = 64;

/** Calls `onPublish(topic, payloadLength)` for each PUBLISH that begins in buf[off, off + len). */
export function readHermesPublishes(buf: Buffer, off: number, len: number, onPublish: (topic: string, payloadLength: number) => void): void {
  const end = off + len;
  for (let n = 0; n < MAX_PER_SEGMENT && off + 2 <= end; n++) {
    const first = buf[off];
    const type = first >> 4;
    if (type < 1 || type > 14) return;
    let remaining = 0;
    let multiplier = 1;
    let i = off + 1;
    let done = false;
    for (let k = 0; k < 4 && i < end; k++, i++) {
      remaining += (buf[i] & 0x7f) * multiplier;
      multiplier *= 128;
      if ((buf[i] & 0x80) === 0) {
        done = true;
        i++;
        break;
      }
    }
    if (!done) return;
    if (type === PUBLISH) {
      if (i + 2 > end) return;
      const topicLength = buf.readUInt16BE(i);
      const qos = (first >> 1) & 3;
      const header = 2 + topicLength + (qos > 0 ? 2 : 0);
      if (topicLength === 0 || topicLength > MAX_TOPIC || header > remaining || i + 2 + topicLength > end) return;
      onPublish(buf.toString('utf8', i + 2, i + 2 + topicLength), remaining - header);
    }
    off = i + remaining;
  }
}
