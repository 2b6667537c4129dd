/**
 * The Raspberry Pi appliance: deploy/install.sh (--help, bad options, its plan in --dry-run and that a
 * dry run changes nothing, refusals), the systemd units (systemd-analyze verify and security), the
 * compose file and Dockerfile, the ssh feed script (with a stand-in ssh), and shellcheck on every shell
 * script in the repository.
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../collector/config.js';
import { EARSHOT_BIN } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { freePort, until } from './helpers/wait.js';

const INSTALL = join(PROJECT_ROOT, 'deploy/install.sh');
const FEED = join(PROJECT_ROOT, 'deploy/earshot-ssh-feed.sh');
const UNIT = join(PROJECT_ROOT, 'deploy/systemd/earshot.service');
const FEED_UNIT = join(PROJECT_ROOT, 'deploy/systemd/earshot-ssh-feed.service');
const FIXTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const inCi = process.env.CI === 'true';
const isRoot = process.getuid?.() === 0;

const dir = mkdtempSync(join(tmpdir(), 'earshot-deploy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

function bash(args: string[], env: Record<string, string> = {}, asUser?: number): SpawnSyncReturns<string> {
  const command = asUser === undefined ? ['bash', ...args] : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', 'bash', ...args];
  const home = asUser === undefined ? {} : { HOME: '/nonexistent' };
  return spawnSync(command[0], command.slice(1), { encoding: 'utf8', env: { ...process.env, ...home, ...env }, cwd: dir, timeout: 120_000 });
}

/** Bad input: exit 2 and exactly one line on stderr. */
function expectOneLineRefusal(r: SpawnSyncReturns<string>, pattern: RegExp): void {
  expect(r.status).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** What a dry run must leave as it found it: existence, size and mtime, and directory listings. */
function snapshot(): string[] {
  const paths = ['/etc/earshot', '/etc/earshot/earshot.yaml', '/opt/earshot', '/opt/earshot.new', '/opt/earshot.old', '/var/lib/earshot',
    '/usr/local/bin/earshot', '/etc/systemd/system/earshot.service', '/etc/systemd/system/influxdb.service.d', '/etc/apt/sources.list.d',
    '/etc/apt/keyrings', '/etc/grafana/provisioning', '/etc/systemd/system/multi-user.target.wants',
    join(PROJECT_ROOT, 'dist/cli/main.js')];
  const state = paths.map((path) => {
    if (!existsSync(path)) return `${path}: absent`;
    const s = lstatSync(path);
    const listing = s.isDirectory() ? ` [${readdirSync(path).sort().join(' ')}]` : '';
    return `${path}: ${s.mode.toString(8)} ${s.size} ${s.mtimeMs}${listing}`;
  });
  // no build, no npm pack in the checkout
  state.push(`tarballs: ${readdirSync(PROJECT_ROOT).filter((name) => name.endsWith('.tgz')).join(' ')}`);
  for (const db of ['passwd', 'group']) state.push(`${db}: ${spawnSync('getent', [db, 'earshot'], { encoding: 'utf8' }).stdout}`);
  return state;
}

describe('deploy/install.sh', () => {
  it('--help describes what it installs and every option', () => {
    const r = bash([INSTALL, '--help']);
    expect(r.status).toBe(0);
    for (const text of ['--dry-run', '--no-grafana', '--no-influxdb', '--interface IF', 'libpcap0.8', 'deb.nodesource.com', 'apt.grafana.com', '/opt/earshot', '/var/lib/earshot']) {
      expect(r.stdout).toContain(text);
    }
  });

  it('an unknown option, or one without its value, exits 2 with one line', () => {
    expectOneLineRefusal(bash([INSTALL, '--frobnicate']), /^earshot install: unknown option: --frobnicate/);
    expectOneLineRefusal(bash([INSTALL, '--interface']), /--interface needs a value/);
    expectOneLineRefusal(bash([INSTALL, '--dry-run', '--interface', 'eth0; rm -rf /']), /not an interface name/);
    expectOneLineRefusal(bash([INSTALL, '--dry-run', '--source', 'pcapng']), /--source must be libpcap or tcpdump/);
  });

  it('refuses a system that is not Debian-like', () => {
    const osRelease = join(dir, 'os-release');
    writeFileSync(osRelease, 'NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n');
    expectOneLineRefusal(bash([INSTALL, '--dry-run'], { EARSHOT_OS_RELEASE: osRelease }), /for Raspberry Pi OS and Debian.*Fedora Linux 40/);
  });

  it.skipIf(!isRoot || !has('setpriv'))('refuses to install without root, but shows its plan', () => {
    // nobody: the user a root test run can become
    expectOneLineRefusal(bash([INSTALL, '--no-grafana'], {}, 65534), /please run this as root/);
    const plan = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb'], {}, 65534);
    expect(plan.stderr).toBe('');
    expect(plan.status).toBe(0);
  });

  it('--dry-run prints the plan, every step of it, and changes nothing', () => {
    const before = snapshot();
    // an interface no config names, so the plan always sets it
    const r = bash([INSTALL, '--dry-run', '--interface', 'earshot-test0']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(snapshot()).toEqual(before);
    const plan = r.stdout;
    expect(plan).toMatch(/^earshot install plan \(dry run: nothing is changed/);
    const steps = [...plan.matchAll(/^== \d+\. (.*)$/gm)].map((m) => m[1]);
    expect(steps).toEqual([
      expect.stringMatching(/^System packages/), 'Node.js >= 22.12', 'InfluxDB 1.x on 127.0.0.1:8086',
      'Grafana from Grafana\'s apt repository (apt.grafana.com)', 'System user earshot (no login, no home)', 'earshot in /opt/earshot',
      'Configuration in /etc/earshot, state in /var/lib/earshot', 'Grafana provisioning from deploy/grafana',
      'systemd unit /etc/systemd/system/earshot.service', 'Done']);
    // each step either was done already or says the command it would run
    expect(plan).toMatch(/installed already: libpcap0\.8|\+ apt-get install .*libpcap0\.8/);
    expect(plan).toMatch(/using Node\.js v\d+|NodeSource|from the distribution/);
    expect(plan).toMatch(/exists already: uid=|\+ useradd --system --user-group --no-create-home --home-dir \/nonexistent --shell \/usr\/sbin\/nologin .* earshot/);
    expect(plan).toContain('+ (cd /opt/earshot.new && npm ci --omit=dev --ignore-scripts');
    expect(plan).toMatch(/> write \/etc\/systemd\/system\/influxdb\.service\.d\/earshot\.conf[\s\S]*INFLUXDB_HTTP_BIND_ADDRESS=127\.0\.0\.1:8086|unchanged: \/etc\/systemd\/system\/influxdb\.service\.d\/earshot\.conf/);
    expect(plan).toMatch(/deb \[signed-by=\/etc\/apt\/keyrings\/grafana\.gpg\] https:\/\/apt\.grafana\.com stable main|installed already: grafana|apt repository grafana: set up already/);
    expect(plan).toMatch(/\+ set in \/etc\/earshot\/earshot\.yaml:.* capture\.interface=earshot-test0/);
    expect(plan).toMatch(/\+ install -m 0644 -o root -g root \S+\/deploy\/systemd\/earshot\.service \/etc\/systemd\/system\/earshot\.service|unchanged: \/etc\/systemd\/system\/earshot\.service/);
    expect(plan).toMatch(/\+ systemctl enable earshot\.service|enabled already: earshot\.service/);
    expect(plan).toContain('dry run: nothing was changed');
  });

  it('a re-run follows the existing config\'s capture source: --source sets it, and the pcap addon is built when, and only when, the config uses it', () => {
    const confDir = mkdtempSync(join(dir, 'conf-'));
    const conf = join(confDir, 'earshot.yaml');
    const plan = (source: string, args: string[]) => {
      writeFileSync(conf, `capture:\n  source: ${source}\n  interface: eth0\n`);
      const r = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb', ...args], { EARSHOT_CONF_DIR: confDir });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(conf, 'utf8')).toBe(`capture:\n  source: ${source}\n  interface: eth0\n`);
      return r.stdout;
    };
    // a libpcap install switched to tcpdump the documented way (it kept libpcap, without its addon: no start)
    const switched = plan('libpcap', ['--source', 'tcpdump']);
    expect(switched).toContain(`+ set in ${conf}: capture.source=tcpdump`);
    expect(switched).not.toContain('npm rebuild pcap');
    // re-run without --source: a tcpdump config builds nothing and needs no compiler; a libpcap one is built
    const tcpdump = plan('tcpdump', []);
    expect(tcpdump).not.toContain('npm rebuild pcap');
    expect(tcpdump).not.toMatch(/apt-get install .*libpcap-dev/);
    expect(tcpdump).not.toContain('capture.source=');
    const libpcap = plan('libpcap', []);
    expect(libpcap).toContain('npm rebuild pcap');
    expect(libpcap).not.toContain('capture.source=');
  });

  it('gives Grafana\'s admin user a random password before Grafana first starts (it was admin/admin, open to the LAN), and never prints it', () => {
    const confDir = mkdtempSync(join(dir, 'grafana-'));
    const r = bash([INSTALL, '--dry-run', '--no-influxdb'], { EARSHOT_CONF_DIR: confDir });
    expect(r.status, r.stderr).toBe(0);
    const plan = r.stdout;
    if (existsSync('/var/lib/grafana/grafana.db')) {
      expect(plan).toContain('Grafana has run before: its admin user is as it was');
      return;
    }
    expect(plan).toContain(`> write ${confDir}/grafana-admin-password (0600 root:root): a random password for Grafana's admin user`);
    expect(plan).toContain(`> write ${confDir}/grafana-admin.env (0600 root:root): GF_SECURITY_ADMIN_PASSWORD=(that password)`);
    expect(plan).toMatch(/> write \/etc\/systemd\/system\/grafana-server\.service\.d\/earshot\.conf[\s\S]*EnvironmentFile=-\S+\/grafana-admin\.env/);
    // written before the package, whose first start makes the admin user
    expect(plan.indexOf('grafana-admin-password')).toBeLessThan(plan.search(/apt-get install .*grafana|installed already: grafana/));
    expect(plan).not.toMatch(/GF_SECURITY_ADMIN_PASSWORD=[A-Za-z0-9]{24}/);
    expect(plan).toContain(`user admin, password: sudo cat ${confDir}/grafana-admin-password`);
    expect(existsSync(join(confDir, 'grafana-admin-password'))).toBe(false);
    // an empty password file (an install cut off by a power cut) is made again, not taken as a password
    writeFileSync(join(confDir, 'grafana-admin-password'), '');
    const again = bash([INSTALL, '--dry-run', '--no-influxdb'], { EARSHOT_CONF_DIR: confDir });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain(`> write ${confDir}/grafana-admin-password (0600 root:root): a random password`);
    // a password there already is kept
    writeFileSync(join(confDir, 'grafana-admin-password'), 'kept-password\n');
    expect(bash([INSTALL, '--dry-run', '--no-influxdb'], { EARSHOT_CONF_DIR: confDir }).stdout).toContain(`Grafana's admin password: in ${confDir}/grafana-admin-password (an earlier install's)`);
  });

  it('edits an existing config in place of it: comments, mode and owner kept, written whole (temporary file, fsync, rename)', () => {
    const confDir = mkdtempSync(join(dir, 'yaml-set-'));
    const conf = join(confDir, 'earshot.yaml');
    writeFileSync(conf, 'capture:\n  source: libpcap # how earshot captures\n  interface: eth0\n');
    chmodSync(conf, 0o640);
    // the installer's own function, run for real on the copy (a dry run only prints what it would set)
    const script = `set -euo pipefail\nnote() { :; }\n${/^yaml_set\(\) \{[\s\S]*?^\}$/m.exec(readFileSync(INSTALL, 'utf8'))![0]}\nDRY_RUN=0 NODE=${process.execPath} PREFIX=${PROJECT_ROOT}\nyaml_set ${conf} capture.source=tcpdump capture.interface=br0\n`;
    const r = bash(['-c', script]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(conf, 'utf8')).toBe('capture:\n  source: tcpdump # how earshot captures\n  interface: br0\n');
    expect(lstatSync(conf).mode & 0o777).toBe(0o640);
    expect(readdirSync(confDir)).toEqual(['earshot.yaml']);
  });

  it('on a fresh Debian 12 it plans every package: Node.js 24 from NodeSource, InfluxDB from Debian or InfluxData', () => {
    // stand-ins: nothing installed, Node.js 18 on PATH, Debian 12's candidates
    const bin = mkdtempSync(join(dir, 'fresh-'));
    const stub = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    stub('dpkg-query', 'exit 1');
    stub('systemctl', 'exit 1');
    stub('node', 'case "$1" in -p) echo 18.19.0 ;; *) echo v18.19.0 ;; esac');
    const candidates = (influxdb: string) => stub('apt-cache', [
      'case "$2" in',
      '  nodejs) echo "  Candidate: 18.19.0+dfsg-6~deb12u2" ;;',
      `  influxdb) echo "  Candidate: ${influxdb}" ;;`,
      '  *) echo "  Candidate: (none)" ;;',
      'esac'].join('\n'));
    const env = { PATH: `${bin}:${process.env.PATH}` };

    candidates('1.6.7~rc0-1+b13');
    const r = bash([INSTALL, '--dry-run'], env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    let plan = r.stdout;
    expect(plan).toContain('+ apt-get install -y -q --no-install-recommends libpcap0.8 tcpdump ca-certificates curl gpg iproute2 libpcap-dev g++ make python3');
    expect(plan).toContain('Node.js v18.19.0 at');
    expect(plan).toContain('installing Node.js 24 from NodeSource\'s apt repository (deb.nodesource.com)');
    expect(plan).toContain('+ curl -fsSL --proto =https -o /tmp/earshot-install.XXXXXX/nodesource.key https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key');
    expect(plan).toContain('deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_24.x nodistro main');
    expect(plan).toContain('+ apt-get install -y -q nodejs');
    expect(plan).toContain('from the distribution: influxdb 1.6.7~rc0-1+b13');
    expect(plan).toContain('+ apt-get install -y -q --no-install-recommends influxdb');
    expect(plan).toContain('+ systemctl enable influxdb.service');
    expect(plan).toContain('deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main');
    expect(plan).toContain('+ apt-get install -y -q --no-install-recommends grafana');
    expect(plan).toMatch(/exec \/usr\/bin\/node --max-semi-space-size=8 \/opt\/earshot\/dist\/cli\/main\.js "\$@"|unchanged: \/usr\/local\/bin\/earshot/);
    // the InfluxDB drop-in comes before the package, so InfluxDB never listens beyond loopback
    expect(plan.indexOf('influxdb.service.d/earshot.conf')).toBeLessThan(plan.indexOf('install -y -q --no-install-recommends influxdb'));

    // the Node.js 20 an earlier install took from NodeSource reached its end of life: replaced by 24
    stub('node', 'case "$1" in -p) echo 20.19.5 ;; *) echo v20.19.5 ;; esac');
    plan = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb'], env).stdout;
    expect(plan).toMatch(/Node\.js v20\.19\.5 at \S+ reached its end of life on 2026-04-30 \(no more security fixes\): replacing it/);
    expect(plan).toContain('https://deb.nodesource.com/node_24.x nodistro main');
    expect(plan).toContain('+ apt-get install -y -q nodejs');
    // a maintained one is kept
    stub('node', 'case "$1" in -p) echo 22.23.5 ;; *) echo v22.23.5 ;; esac');
    plan = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb'], env).stdout;
    expect(plan).toMatch(/using Node\.js v22\.23\.5 at \S+: new enough/);
    expect(plan).not.toContain('nodesource');
    // a 22 before 22.12 cannot load the API's packages (require() of ES modules): replaced by 24
    stub('node', 'case "$1" in -p) echo 22.11.0 ;; *) echo v22.11.0 ;; esac');
    plan = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb'], env).stdout;
    expect(plan).toMatch(/Node\.js v22\.11\.0 at \S+ is too old \(earshot needs >= 22\.12\)/);
    expect(plan).toContain('https://deb.nodesource.com/node_24.x nodistro main');
    stub('node', 'case "$1" in -p) echo 18.19.0 ;; *) echo v18.19.0 ;; esac');

    candidates('(none)');
    plan = bash([INSTALL, '--dry-run', '--no-grafana'], env).stdout;
    expect(plan).toContain('the distribution has no influxdb package: using InfluxData\'s apt repository instead');
    expect(plan).toContain('https://repos.influxdata.com/influxdata-archive.key');
    expect(plan).toContain('check: the key\'s primary fingerprint must be 24C975CBA61A024EE1B631787C3D57159FC2F927');
    expect(plan).toContain('deb [signed-by=/etc/apt/keyrings/influxdata.gpg] https://repos.influxdata.com/debian stable main');
  });

  it('makes the start-up code cache again with the Node.js it installs for (a tarball comes with its packer\'s)', () => {
    // the command the installer runs in the new install, run for real in a copy of what it installs
    const line = /^\s*if ! run_in "\$PREFIX\.new" (env -i .*); then$/m.exec(readFileSync(INSTALL, 'utf8'));
    expect(line).not.toBeNull();
    // what the installer unpacks: the package npm packs (its node_modules here from the checkout)
    const packed = mkdtempSync(join(dir, 'packed-'));
    execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', packed], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const prefix = mkdtempSync(join(dir, 'prefix-'));
    execFileSync('tar', ['-xzf', join(packed, readdirSync(packed)[0]), '-C', prefix, '--strip-components=1']);
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(prefix, 'node_modules'));
    const cache = join(prefix, 'dist/collector/bin/start.cjs.v8cache');
    // one made by another Node.js build: its second hash (deploy/bundle-loader.mjs's layout) is not this one's
    const foreign = readFileSync(cache);
    foreign[foreign.indexOf(0x0a) + 1 + 32] ^= 0xff;
    writeFileSync(cache, foreign);
    const state = () => /^earshot: code cache (.*)$/m.exec(spawnSync(process.execPath, [join(prefix, 'dist/cli/main.js'), '--version'], { encoding: 'utf8', env: { ...process.env, EARSHOT_DEBUG_CODE_CACHE: '1' } }).stderr)?.[1];
    expect(state()).toBe('another Node');
    const r = bash(['-c', `NODE=${process.execPath}; cd ${prefix} && ${(line as RegExpExecArray)[1]}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(state()).toBe('used');
  });

  it('the settings it writes into a new config are keys the schema accepts', () => {
    const r = bash([INSTALL, '--dry-run', '--no-grafana', '--interface', 'earshot-test1']);
    const line = /\+ set in \/etc\/earshot\/earshot\.yaml: (.*)$/m.exec(r.stdout);
    expect(line).not.toBeNull();
    const doc = YAML.parseDocument(readFileSync(join(PROJECT_ROOT, 'deploy/earshot.example.yaml'), 'utf8'));
    for (const pair of line![1].split(' ')) {
      const at = pair.indexOf('=');
      doc.setIn(pair.slice(0, at).split('.'), pair.slice(at + 1));
    }
    const file = join(dir, 'earshot.yaml');
    writeFileSync(file, String(doc));
    const config = loadConfig({ file });
    expect(config.capture.interface).toBe('earshot-test1');
  });

  it('--no-grafana and --no-influxdb leave those steps out', () => {
    const r = bash([INSTALL, '--dry-run', '--no-grafana', '--no-influxdb']);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/grafana|influx/i);
  });

  it('copies the Grafana provisioning from deploy/grafana and the dashboards to the provider\'s path', () => {
    // a stand-in checkout, so the test does not depend on what deploy/grafana holds today
    const checkout = join(dir, 'checkout');
    mkdirSync(join(checkout, 'deploy/systemd'), { recursive: true });
    for (const file of ['package.json', 'package-lock.json', 'deploy/install.sh', 'deploy/earshot.example.yaml', 'deploy/systemd/earshot.service']) {
      cpSync(join(PROJECT_ROOT, file), join(checkout, file));
    }
    const grafana = join(checkout, 'deploy/grafana');
    mkdirSync(join(grafana, 'provisioning/datasources'), { recursive: true });
    mkdirSync(join(grafana, 'provisioning/dashboards'), { recursive: true });
    mkdirSync(join(grafana, 'dashboards'), { recursive: true });
    writeFileSync(join(grafana, 'provisioning/datasources/earshot.yaml'), 'apiVersion: 1\n');
    writeFileSync(join(grafana, 'dashboards/overview.json'), '{}\n');
    const provider = join(grafana, 'provisioning/dashboards/earshot.yaml');

    writeFileSync(provider, 'apiVersion: 1\nproviders:\n  - name: earshot\n    type: file\n    options:\n      path: "/srv/earshot-dashboards"\n');
    let plan = bash([join(checkout, 'deploy/install.sh'), '--dry-run', '--no-influxdb']).stdout;
    expect(plan).toContain(`install -m 0640 -o root -g grafana ${grafana}/provisioning/datasources/earshot.yaml /etc/grafana/provisioning/datasources/earshot.yaml`);
    expect(plan).toContain(`install -m 0640 -o root -g grafana ${provider} /etc/grafana/provisioning/dashboards/earshot.yaml`);
    expect(plan).toContain('dashboards: /srv/earshot-dashboards');
    expect(plan).toContain(`install -m 0640 -o root -g grafana ${grafana}/dashboards/overview.json /srv/earshot-dashboards/overview.json`);
    expect(plan).not.toContain('usermod');

    // the default place is inside earshot's 0750 state directory: Grafana gets in through the group
    writeFileSync(provider, 'apiVersion: 1\nproviders:\n  - name: earshot\n    type: file\n');
    plan = bash([join(checkout, 'deploy/install.sh'), '--dry-run', '--no-influxdb']).stdout;
    expect(plan).toContain('dashboards: /var/lib/earshot/grafana/dashboards');
    expect(plan).toMatch(/\+ usermod -a -G earshot grafana|grafana is in group earshot already/);
    expect(plan).toContain('/var/lib/earshot/grafana/dashboards/overview.json');
  });
});

/** The value(s) of a directive in a unit file. */
function directives(unit: string, name: string): string[] {
  return [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
}

/** A copy of the unit whose ExecStart program exists, which `systemd-analyze verify` insists on. */
function verifiableCopy(unitPath: string): string {
  const stub = join(dir, 'earshot-stub');
  writeFileSync(stub, '#!/bin/sh\nexit 0\n');
  chmodSync(stub, 0o755);
  const unitDir = mkdtempSync(join(dir, 'unit-'));
  const copy = join(unitDir, unitPath.split('/').pop()!);
  writeFileSync(copy, readFileSync(unitPath, 'utf8').replace('/usr/local/bin/earshot ', `${stub} `));
  return copy;
}

describe('deploy/systemd', () => {
  const unit = readFileSync(UNIT, 'utf8');

  it('earshot.service runs collect as the earshot user with CAP_NET_RAW alone, sandboxed', () => {
    expect(directives(unit, 'ExecStart')[0]).toMatch(/^\/usr\/local\/bin\/earshot collect --config \/etc\/earshot\/earshot\.yaml --data-dir \/var\/lib\/earshot( |$)/);
    const expected: Record<string, string> = {
      User: 'earshot', AmbientCapabilities: 'CAP_NET_RAW', CapabilityBoundingSet: 'CAP_NET_RAW', NoNewPrivileges: 'yes',
      ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes', ProtectKernelLogs: 'yes', ProtectControlGroups: 'yes', RestrictNamespaces: 'yes',
      LockPersonality: 'yes', MemoryDenyWriteExecute: 'no', SystemCallArchitectures: 'native', StateDirectory: 'earshot',
      StateDirectoryMode: '0750', Restart: 'on-failure', KillSignal: 'SIGTERM',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET',
    };
    for (const [name, value] of Object.entries(expected)) expect(directives(unit, name), name).toEqual([value]);
    expect(directives(unit, 'RestartSec')).toHaveLength(1);
    expect(directives(unit, 'Wants')[0]).toContain('influxdb.service');
    expect(directives(unit, 'Wants')[0]).toContain('network-online.target');
    expect(directives(unit, 'After')[0]).toContain('influxdb.service');
    expect(directives(unit, 'Requires')).toEqual([]);
    // stopping waits for InfluxDB (influx.waitS) and webhooks (alerts.waitS): systemd must wait longer
    const defaults = loadConfig();
    const stopS = Number(/^(\d+)s$/.exec(directives(unit, 'TimeoutStopSec')[0])![1]);
    expect(stopS).toBeGreaterThanOrEqual(defaults.influx.waitS + defaults.alerts.waitS);
    expect(unit).toMatch(/^# MemoryDenyWriteExecute=yes would kill Node/m);
  });

  const analyze = has('systemd-analyze');
  if (!analyze) console.warn('skipping systemd-analyze checks of deploy/systemd: systemd-analyze is not installed');

  it.skipIf(!analyze)('systemd-analyze verify accepts both units', () => {
    for (const path of [UNIT, FEED_UNIT]) {
      const r = spawnSync('systemd-analyze', ['verify', verifiableCopy(path)], { encoding: 'utf8' });
      expect(r.stderr, path).toBe('');
      expect(r.status, path).toBe(0);
    }
  });

  it.skipIf(!analyze)('the exposure score in earshot.service\'s comment is the one systemd-analyze security gives', ({ skip }) => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', verifiableCopy(UNIT)], { encoding: 'utf8' });
    if (r.status !== 0 && /offline/.test(r.stderr)) skip('this systemd-analyze has no --offline (systemd < 252)');
    expect(r.status).toBe(0);
    const measured = /Overall exposure level for earshot\.service: (\d+\.\d+) (\w+)/.exec(r.stdout);
    expect(measured).not.toBeNull();
    expect(unit).toContain(`"Overall exposure level for earshot.service: ${measured![1]} ${measured![2]}"`);
  });
});

describe('deploy/compose.yaml and deploy/Dockerfile (parsed, not run: no Docker here)', () => {
  it('runs earshot on the host network with NET_RAW beside InfluxDB 1.8 and Grafana with the provisioning', () => {
    const compose = YAML.parse(readFileSync(join(PROJECT_ROOT, 'deploy/compose.yaml'), 'utf8'));
    const { earshot, influxdb, grafana } = compose.services;
    expect(existsSync(join(PROJECT_ROOT, 'deploy', earshot.build.context, earshot.build.dockerfile))).toBe(true);
    expect(earshot.network_mode).toBe('host');
    expect(earshot.cap_add).toEqual(['NET_RAW']);
    expect(earshot.cap_drop).toEqual(['ALL']);
    // SOURCE:TARGET[:ro], where SOURCE may be ${VARIABLE:-default}
    const targets = (service: { volumes: string[] }) => service.volumes.map((v) => /:(\/[^:]*)(:ro)?$/.exec(v)?.[1]);
    expect(targets(earshot)).toEqual(expect.arrayContaining(['/etc/earshot/earshot.yaml', '/var/lib/earshot']));
    expect(earshot.environment.EARSHOT_INFLUX_URL).toBe('http://127.0.0.1:8086');
    expect(influxdb.image).toBe('influxdb:1.8');
    expect(influxdb.environment.INFLUXDB_HTTP_BIND_ADDRESS).toBe('127.0.0.1:8086');
    expect(grafana.image).toMatch(/^grafana\/grafana/);
    // Grafana listens on the LAN: never admin / admin, the compose refuses to start without a password
    expect(grafana.environment.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{EARSHOT_GRAFANA_PASSWORD:\?.+\}$/);
    expect(targets(grafana)).toContain('/etc/grafana/provisioning');
    expect(grafana.volumes.find((v: string) => v.endsWith(':/etc/grafana/provisioning:ro'))).toBe('./grafana/provisioning:/etc/grafana/provisioning:ro');
    // the dashboards are mounted where the provider (deploy/grafana, when it exists) looks for them
    const providerFile = join(PROJECT_ROOT, 'deploy/grafana/provisioning/dashboards/earshot.yaml');
    const providerPath = existsSync(providerFile)
      ? YAML.parse(readFileSync(providerFile, 'utf8')).providers[0].options.path as string
      : '/etc/earshot/grafana/dashboards';
    expect(grafana.volumes).toContain(`./grafana/dashboards:${providerPath}:ro`);
    for (const name of Object.keys(compose.volumes)) expect(compose.volumes[name]).toBeNull();
  });

  it('the Dockerfile builds on node:24-bookworm-slim and runs as a non-root user with NET_RAW', () => {
    const dockerfile = readFileSync(join(PROJECT_ROOT, 'deploy/Dockerfile'), 'utf8');
    expect([...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    expect(dockerfile).toMatch(/libpcap0\.8/);
    expect(dockerfile).toMatch(/npm ci /);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/setcap cap_net_raw=ep \/usr\/local\/bin\/node/);
    expect(/^USER (\S+)/m.exec(dockerfile)?.[1]).toBe('earshot');
  });

  it("the Dockerfile's HEALTHCHECK passes against a real earshot listening beyond loopback (with its token)", async () => {
    const dockerfile = readFileSync(join(PROJECT_ROOT, 'deploy/Dockerfile'), 'utf8');
    const command = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')))?.[1] ?? '[]') as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const token = 'healthcheck-token-0123456789';
    const port = await freePort();
    const earshot = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--file', FIXTURE, '--listen', `0.0.0.0:${port}`, '--log-level', 'error'], { env: { ...process.env, EARSHOT_API_TOKEN: token }, stdio: 'ignore' });
    try {
      const script = command[2].replace('127.0.0.1:8377', `127.0.0.1:${port}`);
      const check = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, EARSHOT_API_TOKEN: '', ...env }, timeout: 10_000 }).status;
      await until('the API answers', () => check({ EARSHOT_API_TOKEN: token }) === 0, 20_000, 200);
      // beyond loopback the health route needs the token: without it the check fails
      expect(check({})).toBe(1);
    } finally {
      earshot.kill('SIGKILL');
    }
  });
});

describe('deploy/earshot-ssh-feed.sh', () => {
  /** A stand-in ssh that streams the fixture capture, counting its calls, and the real earshot to run; or the scripts given. */
  function standIns(scripts: { ssh?: string; earshot?: string } = {}): { env: Record<string, string>; calls: string } {
    const bin = mkdtempSync(join(dir, 'bin-'));
    const calls = join(bin, 'calls');
    writeFileSync(join(bin, 'ssh'), scripts.ssh ?? `#!/bin/sh\necho "$*" >> ${calls}\ncat ${FIXTURE}\n`);
    writeFileSync(join(bin, 'earshot'), scripts.earshot ?? `#!/bin/sh\nexec ${process.execPath} ${EARSHOT_BIN} "$@"\n`);
    chmodSync(join(bin, 'ssh'), 0o755);
    chmodSync(join(bin, 'earshot'), 0o755);
    writeFileSync(join(bin, 'key'), '');
    writeFileSync(join(bin, 'known_hosts'), '');
    return {
      calls,
      env: { PATH: `${bin}:${process.env.PATH}`, EARSHOT_BIN: join(bin, 'earshot'), EARSHOT_FEED_KEY: join(bin, 'key'), EARSHOT_FEED_KNOWN_HOSTS: join(bin, 'known_hosts'), EARSHOT_FEED_PAUSE: '0' },
    };
  }

  it('--help, and one-line refusals', () => {
    expect(bash([FEED, '--help']).stdout).toContain('--router USER@HOST');
    expectOneLineRefusal(bash([FEED, '--bogus']), /^earshot-ssh-feed: unknown option: --bogus/);
    expectOneLineRefusal(bash([FEED, '--key', '/nonexistent']), /--router USER@HOST .* is required/);
  });

  it('streams the router\'s tcpdump into earshot collect --source stdin', () => {
    const { env, calls } = standIns();
    const report = join(dir, 'feed-report.json');
    const r = bash([FEED, '--router', 'root@router.lan', '--interface', 'br-lan', '--once', '--', '--format', 'json', '--output', report, '--listen', '127.0.0.1:0', '--log-level', 'error'], env);
    expect(r.stderr).toMatch(/streaming br-lan from root@router\.lan/);
    expect(r.status).toBe(0);
    expect(readFileSync(calls, 'utf8')).toMatch(/-o BatchMode=yes .*-o StrictHostKeyChecking=yes .* root@router\.lan tcpdump -i br-lan -U -s 0 -w - 'not port 22'$/m);
    expect(JSON.parse(readFileSync(report, 'utf8')).capture.packets).toBe(2778);
  });

  // SIGHUP: the terminal it was started from by hand closed
  it.each(['SIGTERM', 'SIGHUP'] as const)('reconnects when the stream ends, and stops earshot cleanly on %s', async (signal) => {
    const { env, calls } = standIns();
    const child = spawn('bash', [FEED, '--router', 'root@router.lan', '--', '--output', '/dev/null', '--listen', '127.0.0.1:0', '--log-level', 'error'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 60_000;
    while ((existsSync(calls) ? readFileSync(calls, 'utf8').split('\n').length - 1 : 0) < 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill(signal);
    expect(await exited).toBe(0);
    expect(stderr.match(/stream ended/g)?.length).toBeGreaterThanOrEqual(2);
  });

  // An earshot that ends within microseconds of the script's SIGTERM (here: exit 3, points left
  // undelivered) lands between the interrupted `wait` and the script's look at whether it still runs: the
  // script used to exit with the wait's own status (129 at SIGHUP, 143 taken for 0 at SIGTERM) in most
  // such stops. A stand-in earshot, as no real one can be made to die that fast on purpose.
  it.each(['SIGTERM', 'SIGHUP'] as const)('exits with earshot\'s own status when earshot ends at once on %s', async (signal) => {
    const ready = join(dir, `ready-${signal}`);
    const { env } = standIns({ ssh: '#!/bin/sh\nexec sleep 1000\n', earshot: `#!/bin/bash\ntrap 'kill $s; exit 3' TERM\nsleep 1000 & s=$!\ntouch ${ready}\nwait\n` });
    // a race the old script lost in most stops at SIGHUP and in some at SIGTERM: ten stops each
    for (let i = 0; i < 10; i++) {
      rmSync(ready, { force: true });
      const child = spawn('bash', [FEED, '--router', 'root@router.lan'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await until('the stand-in earshot to start', () => existsSync(ready), 10_000);
      child.kill(signal);
      expect(await exited).toBe(3);
    }
  });
});

/** Every shell script in the repository: *.sh, and files whose #! line names sh or bash. */
function shellScripts(): string[] {
  const skip = new Set(['node_modules', 'dist', '.git', 'coverage', 'test-artifacts']);
  const found: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (!skip.has(entry.name) && !path.endsWith('bench/out')) walk(path);
      } else if (entry.isFile()) {
        if (entry.name.endsWith('.sh')) {
          found.push(path);
          continue;
        }
        const head = Buffer.alloc(64);
        const fd = openSync(path, 'r');
        const n = readSync(fd, head, 0, 64, 0);
        closeSync(fd);
        if (/^#!\s*\S*(\/|env\s+)(ba|da)?sh\b/.test(head.subarray(0, n).toString('latin1'))) found.push(path);
      }
    }
  };
  walk(PROJECT_ROOT);
  return found.map((path) => relative(PROJECT_ROOT, path)).sort();
}

describe('shellcheck', () => {
  const installed = has('shellcheck');
  if (!installed && !inCi) console.warn('skipping shellcheck: it is not installed (apt-get install shellcheck; deploy/setup.sh installs it)');

  it.skipIf(!installed && !inCi)('passes on every shell script in the repository', () => {
    expect(installed, 'CI must have shellcheck (deploy/setup.sh installs it)').toBe(true);
    const scripts = shellScripts();
    expect(scripts).toEqual(expect.arrayContaining(['.ci/run', 'deploy/earshot-ssh-feed.sh', 'deploy/install.sh', 'deploy/setup.sh']));
    let output = '';
    try {
      execFileSync('shellcheck', ['--external-sources', ...scripts], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    } catch (err) {
      output = (err as { stdout?: string }).stdout ?? String(err);
    }
    expect(output).toBe('');
  });
});
