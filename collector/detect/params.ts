/**
 * Detector parameters per vendor, with their priors from published measurements (FACTS.md):
 * - Echo (Kennedy et al. captures): a command uploads 40–80 kB over 3–11 s, the first second 15–30 kB
 *   (the wake word and the start of speech), then a steady 8–10 kB/s; the event post after an answer is
 *   one second of 10–35 kB; keepalives are 100–154 B every 30 s. Dubois et al. use 1-s bins and a
 *   per-device threshold (Echo 12,172 B/s); we keep their bins and look for sustained audio instead.
 * - HomePod: a Siri upload of 46–47 kB over 5.5–9 s (~5–8 kB/s); 1-s spikes of 10–12 kB and periodic
 *   ~3.8 kB exchanges are not activations.
 * - Google Home / Nest: voice over QUIC; Dubois et al. report similar rates to the Echo (Home Mini).
 */

export interface DetectorParams {
  /** A second with at least this many bytes uploaded is active. */
  activeBinBytes: number;
  /** A second with at least this many bytes carries audio (speech streams at 8–10 kB/s). */
  audioBinBytes: number;
  /** An activation has at least this many audio seconds... */
  minAudioBins: number;
  /** ...and uploads at least this many bytes. */
  minBytes: number;
  /** After a quiet second, a second this strong starts a new activation (a new wake word). */
  startBinBytes: number;
  /** Quiet seconds tolerated inside one activation (speech pauses, a second boundary split). */
  maxGapBins: number;
  /** An activation lasts at least this long from its first to its last active packet (event posts last a second). */
  minDurationMs: number;
  /** An activation starting this soon after the device's previous one ended is a follow-up. */
  followUpMs: number;
  /** Where the numbers come from. */
  source: string;
}

const ECHO: DetectorParams = {
  activeBinBytes: 2_000,
  audioBinBytes: 6_000,
  minAudioBins: 2,
  minBytes: 30_000,
  startBinBytes: 15_000,
  maxGapBins: 1,
  // the shortest Echo command in the vcfp captures lasts 1.66 s; an event post one second
  minDurationMs: 1_300,
  followUpMs: 8_000,
  source: 'Kennedy et al. CNS 2019 captures (FACTS.md): 15–30 kB first second, 8–10 kB/s speech, 1-s event posts',
};

export const VENDOR_PARAMS: Readonly<Record<string, DetectorParams>> = {
  amazon: ECHO,
  apple: {
    ...ECHO,
    audioBinBytes: 4_000,
    minAudioBins: 3,
    minBytes: 30_000,
    startBinBytes: 12_000,
    source: 'HomePod misactivation uploads of 46–47 kB over 5.5–9 s; 1-s 10–12 kB spikes are not activations (FACTS.md)',
  },
  google: {
    ...ECHO,
    minBytes: 20_000,
    startBinBytes: 10_000,
    source: 'Dubois et al. PETS 2020 detect the Home Mini like the Echos; its QUIC uploads start without the Echo\'s strong first second, so lower byte floors until measured',
  },
  sonos: { ...ECHO, source: 'no published numbers; Echo priors' },
};

/** The parameters for a vendor (Echo priors for unknown vendors). */
export function paramsFor(vendor: string | null): DetectorParams {
  return (vendor && VENDOR_PARAMS[vendor]) || ECHO;
}
