/** Replays a capture through the whole pipeline in-process and returns the report. */
import { buildSource } from '../../collector/capture/index.js';
import { loadConfig, type ConfigSources } from '../../collector/config.js';
import { flowRecord } from '../../collector/flow/record.js';
import { buildCollector } from '../../collector/index.js';
import { buildReportSink, type Report } from '../../collector/sink/report.js';

export async function replayReport(file: string, sources: ConfigSources = {}): Promise<Report> {
  const config = loadConfig(sources);
  const sink = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices, site: config.site });
  const collector = buildCollector(config, { onFlowEnd: (f) => sink.onFlowEnd(flowRecord(f)), onDnsAnswer: sink.onDnsAnswer, onActivation: sink.onActivation, onCall: sink.onCall });
  const stats = await collector.run(buildSource({ kind: 'file', path: file }, {}));
  return sink.build(stats, collector.stats(), { devices: collector.inventory?.all(), findings: collector.findings.list() });
}
