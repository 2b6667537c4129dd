/** Shared types of the capture sources: how packets leave a source and what a source reports. */

/** LINKTYPE_* values (tcpdump.org/linktypes.html) that the decoders understand. */
export const LinkType = {
  NULL: 0, // BSD loopback, host-endian 4-byte AF
  ETHERNET: 1,
  RAW: 101, // raw IPv4/IPv6
  LOOP: 108, // OpenBSD loopback, big-endian 4-byte AF
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** The link types a capture may have; anything else is EARSHOT_ERR_UNKNOWN_LINKTYPE. */
export const SUPPORTED_LINKTYPES: ReadonlySet<number> = new Set(Object.values(LinkType));

/** Names for messages. */
export const LINKTYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'NULL', 1: 'ETHERNET', 101: 'RAW', 108: 'LOOP', 113: 'LINUX_SLL', 228: 'IPV4', 229: 'IPV6', 276: 'LINUX_SLL2',
};

/**
 * Receives each packet. buf[offset, offset + capLen) holds the captured bytes and is only valid during
 * the call (the source reuses its buffers); wireLen is the original length on the wire (frame.len);
 * timeMs is the packet timestamp in milliseconds since the epoch (fractional, µs/ns kept as fraction).
 */
export type PacketSink = (
  buf: Buffer,
  offset: number,
  capLen: number,
  wireLen: number,
  timeMs: number,
  linkType: number,
) => void;

/** Counters a source keeps; read at any time, final after run() resolves. */
export interface CaptureStats {
  /** Packets handed to the sink. */
  packets: number;
  /** Bytes of the (decompressed) input consumed so far. */
  bytesRead: number;
  /** Size of the input file on disk when known (for progress), else null. */
  totalBytes: number | null;
  /** Compressed bytes consumed so far (equals bytesRead when not compressed); for progress. */
  fileBytesRead: number;
  /** The input ended inside a record, or a record header was corrupt: we stopped there. */
  truncated: boolean;
  /** Byte offset of the record where reading stopped because of truncation or corruption. */
  truncatedAt: number | null;
  /** Packets skipped because their interface's link type cannot be decoded (a pcapng's wlan interface). */
  unsupportedLinkPackets: number;
  /** Packets the kernel dropped (libpcap ps_drop), live sources only. */
  kernelDrops: number;
  /** Packets the interface dropped (ps_ifdrop), live sources only. */
  interfaceDrops: number;
  /** Packets stamped more than a day ahead of the packets around them (damaged), given the latest time; files and streams. */
  clockOutliers: number;
  /** When the drop counters last went up (wall time, ms), null when never: live sources only. */
  lastDropMs: number | null;
}

export function emptyCaptureStats(): CaptureStats {
  return {
    packets: 0, bytesRead: 0, totalBytes: null, fileBytesRead: 0,
    truncated: false, truncatedAt: null, unsupportedLinkPackets: 0, kernelDrops: 0, interfaceDrops: 0, clockOutliers: 0, lastDropMs: null,
  };
}

/** A packet source: a capture file, stdin, libpcap or a tcpdump pipe. */
export interface CaptureSource {
  /** What the source reads, for messages ("file x.pcap", "interface eth0"). */
  readonly description: string;
  /**
   * Reads packets into `sink` until the input ends (files, stdin) or stop() is called (live).
   * Resolves with the final stats. Rejects with an EarshotError for unusable input (missing file,
   * not a capture, unsupported link type); a truncated or corrupt tail is not an error: it sets
   * stats.truncated and calls onWarning once.
   */
  run(sink: PacketSink): Promise<CaptureStats>;
  /** Ends a live capture (or a file read early); run() then resolves. */
  stop(): void;
  /** Current counters. */
  stats(): CaptureStats;
  /**
   * A paced replay's next packet: the capture time of the packet it holds until its wall time is due
   * (+Infinity when it holds none). The wall clock must not move the collector's clock past it: a timer
   * that fires late, on a busy machine, would otherwise end uploads the file goes on to show.
   */
  heldPacketMs?(): number;
}

/** What every source gets from its builder besides its own options. */
export interface SourceDeps {
  /**
   * Called with a one-line warning: once per run for a truncated capture or a libpcap warning; for a
   * live source's drops when they start, then at most once a minute while they go on (drops.ts).
   */
  onWarning?: (message: string) => void;
  /** A live source: called once the capture is open (libpcap opened the interface, tcpdump says it listens). */
  onOpen?: () => void;
}
