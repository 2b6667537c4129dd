/** The time of a capture file's first packet, read before the capture is (a check that must come first). */
import { openCaptureInput } from './input.js';
import { CaptureStreamReader } from './stream-reader.js';

/**
 * The first packet's time (epoch ms) of the pcap or pcapng(.gz) file at `path`, reading no further than
 * the chunk that holds it; null when the file has no packet or is not a capture (the replay itself then
 * says what is wrong with it). Rejects like the replay would for a file that cannot be opened.
 */
export async function firstPacketTimeMs(path: string): Promise<number | null> {
  const input = await openCaptureInput(path, undefined, path);
  // every packet is held (released up to -Infinity): the reader stops at the first and tells its time
  const reader = new CaptureStreamReader(path, () => undefined);
  reader.setRelease(-Infinity);
  try {
    for await (const chunk of input.chunks) {
      if (!reader.push(chunk)) return reader.done() ? null : reader.heldTimeMs;
    }
    return null;
  } finally {
    input.close();
  }
}
