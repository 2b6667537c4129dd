/**
 * A one-line progress bar for reading capture files: bytes read of total, percent, packets and rate.
 * Drawn from a timer (never per packet) and only on a terminal.
 */
import type { CaptureSource } from './types.js';

/** Redraw period: about 10 times a second is smooth enough and costs nothing. */
const REDRAW_MS = 100;
/** The rate is measured over a window so a pause does not show a stale average. */
const RATE_WINDOW_MS = 1000;

/** Formats a byte count with a binary unit ("12.3 MiB"). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The progress line for the given counters (no escape codes); width bounds the bar. */
export function progressLine(read: number, total: number | null, packets: number, packetsPerSecond: number, width: number): string {
  const counts = `${packets.toLocaleString('en-US')} pkts  ${Math.round(packetsPerSecond).toLocaleString('en-US')} pkt/s`;
  if (total === null || total <= 0) return `${formatBytes(read)}  ${counts}`.slice(0, width);
  const fraction = Math.min(1, read / total);
  const numbers = `${formatBytes(read)} / ${formatBytes(total)}  ${(fraction * 100).toFixed(0).padStart(3)}%  ${counts}`;
  const barWidth = Math.min(40, width - numbers.length - 3);
  if (barWidth < 10) return numbers.slice(0, width);
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${numbers}`;
}

/** Progress bar on `stream` for `source`; draws only when the stream is a TTY and the input size is known. */
export function buildProgress(stream: NodeJS.WriteStream, source: CaptureSource): { start(): void; stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let drawn = false;
  let windowStart = 0;
  let windowPackets = 0;
  let rate = 0;

  function draw(): void {
    const stats = source.stats();
    if (stats.totalBytes === null) return;
    const now = Date.now();
    const elapsed = now - windowStart;
    if (elapsed >= RATE_WINDOW_MS / 4) rate = ((stats.packets - windowPackets) * 1000) / elapsed;
    if (elapsed >= RATE_WINDOW_MS) {
      windowStart = now;
      windowPackets = stats.packets;
    }
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    stream.write(`\r${progressLine(stats.fileBytesRead, stats.totalBytes, stats.packets, rate, width)}\x1b[K`);
    drawn = true;
  }

  return {
    start() {
      if (timer !== null || stream.isTTY !== true) return;
      windowStart = Date.now();
      windowPackets = source.stats().packets;
      timer = setInterval(draw, REDRAW_MS);
      timer.unref();
    },
    stop() {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
