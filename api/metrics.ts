/**
 * GET /api/v1/health and GET /metrics (Prometheus text format 0.0.4): earshot's self-metrics and
 * per-assistant series, bounded (MAX_METRIC_DEVICES) and labelled by MAC alone.
 */
import { statfsSync } from 'node:fs';
import { threadHeap, type DeviceEntry, type StatusPart, type ThreadHeap } from '../collector/view.js';
import type { RunView } from './view.js';

/**
 * Drops this recent make the status degraded: a monitor on `status` must tell "dropping now" from
 * "dropped once, at boot" (the counters only grow; one burst kept it degraded until a restart).
 */
export const RECENT_DROPS_MS = 5 * 60_000;

/** Below this much free space the data disk is called full: a spool batch, a state save need more. */
export const DATA_DISK_LOW_BYTES = 1024 * 1024;

/** Free bytes for earshot on the file system of `dir` (null when it cannot be told). */
function freeBytes(dir: string): number | null {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return null;
  }
}

/** What the health route reports: the run's view, and what this process says about itself. */
export interface HealthSource {
  view: RunView;
  /** What is captured ("interface eth0", "file x.pcap"). */
  captureSource: string;
  startedMs: number;
  version: string;
  /** The data directory, whose free space is reported (every file earshot keeps is there). */
  config?: Readonly<{ dataDir: string | null; site?: string }>;
}

/**
 * The process's memory and CPU: its resident set (what the kernel counts: every thread, V8's heaps and
 * what the allocator holds) and each thread's V8 heap (the API's here, and the pipeline's from its
 * status when it has its own thread). A monitor watches RSS; the heaps tell what earshot keeps from how
 * much room V8 and the allocator hold for it.
 */
function processMemory(status: StatusPart) {
  const here = threadHeap();
  const threads: ThreadHeap[] = status.heap.thread === here.thread ? [here] : [here, status.heap];
  const cpu = process.cpuUsage();
  return { rssBytes: process.memoryUsage.rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6, threads };
}

export function health(source: HealthSource, status: StatusPart) {
  const { stats, capture, influx } = status;
  const drops = (capture?.kernelDrops ?? 0) + (capture?.interfaceDrops ?? 0);
  // why the status is degraded, one short sentence each
  const problems: string[] = [];
  const lastDropMs = capture?.lastDropMs ?? null;
  if (drops > 0 && lastDropMs !== null && Date.now() - lastDropMs < RECENT_DROPS_MS) {
    problems.push(`the capture dropped packets ${Math.max(0, Math.round((Date.now() - lastDropMs) / 1000))} s ago (${drops} since it began)`);
  }
  if (influx) {
    if (influx.reachable === false) problems.push('InfluxDB unreachable: points wait in the spool');
    else if (influx.writeProblem !== null) problems.push(`InfluxDB fails writes: ${influx.writeProblem}`);
    if (influx.spoolWriteError !== null) {
      problems.push(`the spool cannot write to disk (${influx.spoolWriteError}): ${influx.spoolHeldPoints} points held in memory`);
    }
  }
  // a full disk shows here even while nothing needs the spool: alerts, labels and the state need room too
  const dataDir = source.config?.dataDir ?? null;
  const free = dataDir !== null ? freeBytes(dataDir) : null;
  if (free !== null && free < DATA_DISK_LOW_BYTES) {
    problems.push(`the data disk is full (${free} bytes free in ${dataDir}): alerts that cannot be kept are dropped, labels are refused (503), InfluxDB points wait in memory`);
  }
  return {
    status: problems.length === 0 ? 'ok' : 'degraded',
    problems,
    version: source.version,
    // which home this collector watches (many may report to one InfluxDB, broker or receiver)
    site: source.config?.site ?? null,
    uptimeS: Math.round((Date.now() - source.startedMs) / 1000),
    capture: {
      running: status.captureRunning,
      source: source.captureSource,
      packets: stats.capture.packets,
      bytes: stats.capture.bytes,
      kernelDrops: capture?.kernelDrops ?? 0,
      interfaceDrops: capture?.interfaceDrops ?? 0,
      lastDropAt: lastDropMs === null ? null : new Date(lastDropMs).toISOString(),
      decodeErrors: stats.decode.decodeErrors,
      flowsActive: stats.flows.active,
      flowsEvicted: stats.flows.evicted,
    },
    influx,
    dataDisk: dataDir !== null ? { dir: dataDir, freeBytes: free } : null,
    activations: stats.detect?.activations ?? 0,
    alerts: status.alerts,
    process: processMemory(status),
  };
}

/** Most assistants with series of their own in /metrics (the busiest; each is four series). */
export const MAX_METRIC_DEVICES = 256;

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The Prometheus exposition. */
export function renderMetrics(source: HealthSource, status: StatusPart, devices: readonly DeviceEntry[]): string {
  const h = health(source, status);
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Record<string, string>, number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
      lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
    }
  };
  // the site and version as labels of a constant 1, joined onto other series in PromQL (`* on() group_left(site) earshot_info`)
  metric('earshot_info', 'gauge', 'The collector: its site and version (always 1).', [[{ site: h.site ?? '', version: h.version }, 1]]);
  metric('earshot_up', 'gauge', 'The capture is running (1) or has ended (0).', [[{}, h.capture.running ? 1 : 0]]);
  metric('earshot_packets_total', 'counter', 'Packets captured.', [[{}, h.capture.packets]]);
  metric('earshot_bytes_total', 'counter', 'Frame bytes captured.', [[{}, h.capture.bytes]]);
  metric('earshot_kernel_drops_total', 'counter', 'Packets the kernel dropped (libpcap).', [[{}, h.capture.kernelDrops]]);
  metric('earshot_decode_errors_total', 'counter', 'Packets that could not be decoded.', [[{}, h.capture.decodeErrors]]);
  metric('earshot_flows_active', 'gauge', 'Flows open now.', [[{}, h.capture.flowsActive]]);
  metric('earshot_flows_evicted_total', 'counter', 'Flows evicted because the table was full.', [[{}, h.capture.flowsEvicted]]);
  if (h.dataDisk && h.dataDisk.freeBytes !== null) metric('earshot_data_disk_free_bytes', 'gauge', 'Free bytes on the file system of the data directory.', [[{}, h.dataDisk.freeBytes]]);
  if (h.influx) {
    metric('earshot_influx_points_written_total', 'counter', 'Points InfluxDB took.', [[{}, h.influx.pointsWritten]]);
    metric('earshot_influx_points_rejected_total', 'counter', 'Points InfluxDB refused (4xx).', [[{}, h.influx.pointsRejected]]);
    metric('earshot_influx_write_errors_total', 'counter', 'Write attempts that failed and are retried.', [[{}, h.influx.writeErrors]]);
    metric('earshot_influx_spool_points', 'gauge', 'Points waiting in the spool.', [[{}, h.influx.spoolPoints]]);
    metric('earshot_influx_spool_bytes', 'gauge', 'Bytes of the spool.', [[{}, h.influx.spoolBytes]]);
    metric('earshot_influx_points_dropped_total', 'counter', 'Points dropped because the spool was full (or held in memory beyond its bound while the disk was full).', [[{}, h.influx.pointsDropped]]);
    metric('earshot_influx_spool_write_errors_total', 'counter', 'Spool writes the disk refused (full, read-only).', [[{}, h.influx.spoolWriteErrors]]);
    metric('earshot_influx_spool_held_points', 'gauge', 'Points held in memory because the disk refused the spool\'s writes.', [[{}, h.influx.spoolHeldPoints]]);
    metric('earshot_influx_batches_quarantined_total', 'counter', 'Batches set aside in the spool\'s quarantine (damaged files, batches InfluxDB could not read).', [[{}, h.influx.batchesQuarantined]]);
  }
  // the names every Prometheus client library uses for a process (node's prom-client among them), so
  // the usual dashboards and alerts on them work unchanged
  metric('process_resident_memory_bytes', 'gauge', 'Resident memory of the earshot process (every thread), bytes.', [[{}, h.process.rssBytes]]);
  metric('process_cpu_seconds_total', 'counter', 'User and system CPU time of the earshot process (every thread), seconds.', [[{}, h.process.cpuSeconds]]);
  metric('process_start_time_seconds', 'gauge', 'Start of the earshot process, seconds since the epoch.', [[{}, Math.floor(Date.now() / 1000 - process.uptime())]]);
  metric('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use, by thread (main: the API; pipeline: capture to sinks, when on its own thread), bytes.',
    h.process.threads.map((t) => [{ thread: t.thread }, t.usedBytes]));
  metric('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap reserved, by thread, bytes.', h.process.threads.map((t) => [{ thread: t.thread }, t.totalBytes]));
  metric('nodejs_external_memory_bytes', 'gauge', 'Memory held outside the V8 heap by its objects (buffers), by thread, bytes.',
    h.process.threads.map((t) => [{ thread: t.thread }, t.externalBytes]));
  // a counter only goes up: every activation found; the verdicts move (a label, a wake event), so they are a gauge
  metric('earshot_activations_total', 'counter', 'Activations found (finished uploads of assistants).', [[{}, h.activations]]);
  metric('earshot_activations', 'gauge', 'Activations among the recent ones kept (10,000), by their verdict now (a label or wake event moves one).',
    ['confirmed', 'suspected', 'unverified'].map((v) => [{ verdict: v }, status.byVerdict[v] ?? 0]));
  const calls = status.calls;
  if (calls) {
    metric('earshot_calls_total', 'counter', 'Finished calls of assistants (two-way media: calls, Drop In, video; never activations).', [[{}, calls.calls]]);
    metric('earshot_calls_open', 'gauge', 'Calls in progress.', [[{}, calls.open]]);
  }
  // per device: assistants only, the MAX_METRIC_DEVICES that moved the most bytes, labelled by MAC alone.
  // Every series Prometheus sees is kept until its retention ends: with every device of the inventory
  // (4,096) and its announced name as labels, forged MACs or names made a new set at every scrape.
  const info: Array<[Record<string, string>, number]> = [];
  const bytes: Array<[Record<string, string>, number]> = [];
  const perDevice: Array<[Record<string, string>, number]> = [];
  // counted where the activations are kept (sink/activity.ts), not by copying up to 10,000 of them here
  const activations = status.activationsByDevice;
  const assistants = devices.map((e) => e.device).filter((d) => d.assistant)
    .sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || a.mac.localeCompare(b.mac))
    .slice(0, MAX_METRIC_DEVICES);
  for (const d of assistants) {
    info.push([{ device: d.mac, name: (d.name ?? '').slice(0, 64), vendor: d.vendor ?? '' }, 1]);
    bytes.push([{ device: d.mac, direction: 'up' }, d.bytesUp], [{ device: d.mac, direction: 'down' }, d.bytesDown]);
    perDevice.push([{ device: d.mac }, activations[d.mac] ?? 0]);
  }
  metric('earshot_device_info', 'gauge', `An assistant's name and vendor (always 1; at most ${MAX_METRIC_DEVICES} assistants, those that moved the most bytes).`, info);
  metric('earshot_device_bytes_total', 'counter', 'Frame bytes an assistant sent (up) and received (down).', bytes);
  metric('earshot_device_activations', 'gauge', 'Activations of an assistant among the recent ones kept (10,000).', perDevice);
  for (const [sink, values] of Object.entries(h.alerts)) {
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === 'number') metric(`earshot_${sink}_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`, 'gauge', `${sink} ${name}.`, [[{}, value]]);
    }
  }
  return `${lines.join('\n')}\n`;
}
