// Helpers of the chat tests: the fake model provider (tests/fakes/
// fake_llm.py, the one test double: the provider is outside the project),
// the stack's chat worker pointed at it and back, and a private edge with
// a chat limit of the test's own (as tests/integration/chat_support.py
// and test_chat_limits.py do it).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { ROOT, TEST_DIR, eventually } from './support.mjs';

const run = promisify(execFile);

// the fake provider on a free port: {base, requests(), request(marker), stop()}
export async function startFake() {
  const proc = spawn('python3', [path.join(ROOT, 'tests', 'fakes', 'fake_llm.py'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout });
    rl.once('line', (l) => { rl.close(); resolve(l); });
    proc.once('exit', (code) => reject(new Error(`fake_llm.py exited (${code}) before it was ready`)));
  });
  const m = /^ready (\d+)$/.exec(line);
  assert.ok(m, `fake_llm.py said ${JSON.stringify(line)}, not "ready PORT"`);
  const base = `http://127.0.0.1:${m[1]}`;
  const fake = {
    base,
    // every completion request the fake saw, in arrival order
    async requests() {
      const r = await fetch(`${base}/_fake/requests`);
      assert.equal(r.status, 200);
      return r.json();
    },
    // the fake's record of the one request whose question holds marker
    async request(marker) {
      const got = (await fake.requests()).filter((r) => (r.messages || []).some(
        (msg) => msg.role === 'user' && String(msg.content).includes(marker)));
      assert.equal(got.length, 1, `one request with ${marker}: ${JSON.stringify(got)}`);
      return got[0];
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
    },
  };
  return fake;
}

// The stack's chat worker stopped and started again with env (the
// ENCORE_PROVIDER_* of its configuration); none: as the stack runs it.
// Not `auto/stack restart-worker`: its hand-over starts the new binary
// with the old process's environment.
export async function restartChat(env = {}) {
  const full = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('ENCORE_PROVIDER_')));
  Object.assign(full, env);
  const stack = path.join(ROOT, 'auto', 'stack');
  await run(stack, ['stop-worker', 'chat'], { env: full, timeout: 120000 });
  await run(stack, ['start-worker', 'chat'], { env: full, timeout: 180000 });
}

async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// a crashed nginx process or a sanitizer report (tests/integration/conftest.py)
const NGINX_PROBLEM = /\[alert\]|\[emerg\]|exited on signal|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

// A second edge: the stack's rendered nginx configuration with
// questions limited to chatRate per user and no burst, on a free port
// with its own pid, logs and temp paths, in front of the same workers.
// {base, stop()}; stop() fails on an [alert], a crash or a sanitizer
// report in its logs.
export async function privateEdge(chatRate) {
  const stackRun = TEST_DIR;
  const dir = path.join(stackRun, `nginx-chat-${randomBytes(4).toString('hex')}`);
  const conf = path.join(dir, 'conf');
  await mkdir(conf, { recursive: true });
  const port = await freePort();
  const files = (await readdir(path.join(stackRun, 'conf'))).filter((f) => f.endsWith('.conf'));
  for (const f of files) {
    let text = await readFile(path.join(stackRun, 'conf', f), 'utf8');
    text = text.replaceAll(`${stackRun}/run/nginx.pid`, `${dir}/nginx.pid`)
      .replaceAll(`${stackRun}/log/`, `${dir}/`)
      .replaceAll(`${stackRun}/nginx/`, `${dir}/tmp/`)
      .replaceAll(`${stackRun}/conf/modules.conf`, `${conf}/modules.conf`)
      // plain http only: the stack's tls.d/ would listen on its https port
      .replaceAll(`${stackRun}/conf/tls.d/`, `${conf}/tls.d/`)
      .replace(/listen\s+127\.0\.0\.1:\d+;/g, `listen 127.0.0.1:${port};`)
      .replace(/(zone=encore_chat_limit:\S+\s+rate=)\S+;/, `$1${chatRate};`)
      .replace(/(zone=encore_chat_limit) burst=\d+/, '$1');
    await writeFile(path.join(conf, f), text);
  }
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    await mkdir(path.join(dir, 'tmp', d), { recursive: true });
    await chmod(path.join(dir, 'tmp', d), 0o777);
  }
  await chmod(dir, 0o755);
  const nginx = process.env.ENCORE_NGINX_BIN || '/usr/sbin/nginx';
  const cmd = ['-p', `${dir}/`, '-c', path.join(conf, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
  await run(nginx, cmd, { timeout: 30000 });
  const base = `http://127.0.0.1:${port}`;
  const up = await eventually(async () => {
    try {
      return (await fetch(`${base}/healthz`)).status === 200;
    } catch (e) {
      return false;
    }
  }, 100, 100);
  assert.ok(up, `the private edge on ${base} answered /healthz (see ${dir})`);
  return {
    base,
    async stop() {
      await run(nginx, [...cmd, '-s', 'quit'], { timeout: 30000 }).catch(() => {});
      await eventually(async () => {
        try {
          await readFile(path.join(dir, 'nginx.pid'));
          return false;
        } catch (e) {
          return true;
        }
      }, 100, 100);
      const problems = [];
      for (const log of ['error.log', 'nginx-error.log']) {
        let text = '';
        try {
          text = await readFile(path.join(dir, log), 'utf8');
        } catch (e) {
          continue;
        }
        problems.push(...text.split('\n').filter((l) => NGINX_PROBLEM.test(l)).map((l) => `${log}: ${l}`));
      }
      assert.deepEqual(problems, [], `the private edge's logs in ${dir}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
