// Helpers for basis.test.mjs: the strict JSON Schema 2020-12 checker (Ajv), the two ways of
// reaching `basis mcp` with the official TypeScript SDK (stdio and streamable HTTP), a session
// that checks every tool result against the MCP contract, and the orchestrator's HTTP API.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Everything the SDK, Ajv or this file wrote through console.warn / console.error. */
export const consoleLines = [];
for (const level of ['warn', 'error']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    consoleLines.push(`${level}: ${args.map(String).join(' ')}`);
    original(...args);
  };
}

/** Ajv for JSON Schema 2020-12 in strict mode; every strictness finding is collected. */
export function strictAjv() {
  const findings = [];
  const logger = {
    log: () => {},
    warn: (...a) => findings.push(`warn: ${a.join(' ')}`),
    error: (...a) => findings.push(`error: ${a.join(' ')}`),
  };
  // strict: true turns each strictness finding into a compile error. Union types
  // (`"type": ["string", "null"]`, what an optional field is) are plain JSON Schema;
  // Ajv's strictTypes only asks that they be allowed explicitly.
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true, logger });
  addFormats(ajv);
  return { ajv, findings };
}

/** The error codes of schemas/errors.json and a validator for a problem object. */
export function problemSchema(ajv) {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'errors.json'), 'utf8'));
  const codes = new Set(schema.$defs.ErrorCode.oneOf.map((c) => c.const));
  // `x-codes` documents each code (exit code included); it is no JSON Schema keyword.
  const { 'x-codes': documented, ...rest } = schema;
  if (documented.length !== codes.size) throw new Error('errors.json: x-codes and ErrorCode differ');
  return { codes, validate: ajv.compile(rest) };
}

/** A fresh temp dir. */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `basis-ts-${prefix}-`));
}

/** A port nothing listens on (bound, then released). */
export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The server's environment: its own BASIS_HOME, nothing inherited from the caller's basis. */
function serverEnv(home) {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    BASIS_HOME: home,
    // Nothing listens on the discard port: only an env file's URL reaches the orchestrator.
    BASIS_ORCHESTRATOR_URL: 'http://127.0.0.1:9',
    RUST_LOG: 'info',
  };
}

/**
 * Connects the SDK's Client to `basis mcp` over `transport` ('stdio' or 'http') with BASIS_HOME
 * = `home`. Returns { client, stderr(), close() }; stderr() is everything the server wrote there.
 */
export async function connect(bin, transport, home) {
  let text = '';
  const client = new Client({ name: 'basis-ts-client-test', version: '0.0.0' });
  if (transport === 'stdio') {
    const t = new StdioClientTransport({
      command: bin,
      args: ['mcp'],
      env: serverEnv(home),
      cwd: home,
      stderr: 'pipe',
    });
    t.stderr.on('data', (chunk) => {
      text += chunk.toString();
    });
    await client.connect(t);
    return { client, stderr: () => text, close: () => client.close() };
  }
  const child = spawn(bin, ['mcp', '--http', '127.0.0.1:0'], {
    env: serverEnv(home),
    cwd: home,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Whatever fails, the server does not outlive the test process.
  process.once('exit', () => child.kill('SIGTERM'));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`basis mcp --http did not start:\n${text}`)), 10_000);
    child.stderr.on('data', (chunk) => {
      text += chunk.toString();
      const m = text.match(/listening on (http:\/\/\S+)\n/); // the whole line
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`basis mcp --http exited (${code}):\n${text}`)));
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  } catch (e) {
    child.kill('SIGTERM');
    throw new Error(`cannot connect to ${url}: ${e.message}\nthe server's stderr:\n${text}`);
  }
  const close = async () => {
    await client.close();
    child.kill('SIGTERM');
    await exited;
  };
  return { client, stderr: () => text, close };
}

/**
 * One connected client with the checks every call goes through: a success's structuredContent
 * is validated against the tool's outputSchema (strict Ajv 2020, compiled from tools/list), an
 * error result must be `isError: true`, no structuredContent, and content[0].text a JSON
 * problem {code, message, fix?} whose code is in schemas/errors.json. A protocol error (the
 * SDK throwing) fails the call either way. Every result is appended to `seen`.
 */
export class Session {
  constructor(conn, checker, seen) {
    this.conn = conn;
    this.checker = checker;
    this.seen = seen;
    this.validators = new Map();
    this.succeeded = new Set();
    this.failed = new Set();
  }

  /**
   * tools/list through the SDK (which caches its own output validators), then compiles every
   * input and output schema with strict Ajv; what does not compile is kept in schemaErrors (and
   * that tool's results then fail validation with the same message).
   */
  async listTools() {
    const { tools } = await this.conn.client.listTools();
    this.schemaErrors = [];
    const compile = (tool, which) => {
      try {
        if (!tool[which]) throw new Error('missing');
        return this.checker.ajv.compile(tool[which]);
      } catch (e) {
        const message = `${tool.name} ${which}: ${e.message}`;
        this.schemaErrors.push(message);
        const fail = () => {
          fail.errors = [{ instancePath: '', message: `the schema did not compile: ${message}` }];
          return false;
        };
        return fail;
      }
    };
    for (const tool of tools) {
      compile(tool, 'inputSchema');
      this.validators.set(tool.name, compile(tool, 'outputSchema'));
    }
    return tools;
  }

  async #call(name, args) {
    try {
      return await this.conn.client.callTool({ name, arguments: args }, undefined, {
        timeout: 90_000,
      });
    } catch (e) {
      throw new Error(`${name}: a protocol error where a tool result was expected: ${e.message}`);
    }
  }

  /** Calls `name`; it must succeed. Returns its validated structuredContent. */
  async ok(name, args = {}) {
    const result = await this.#call(name, args);
    this.seen.push(JSON.stringify(result));
    if (result.isError) {
      throw new Error(`${name} failed: ${result.content?.[0]?.text}`);
    }
    const validate = this.validators.get(name);
    if (!validate) throw new Error(`${name} is not listed`);
    if (!validate(result.structuredContent)) {
      throw new Error(
        `${name}: structuredContent does not match the outputSchema: ${this.checker.ajv.errorsText(validate.errors)}`,
      );
    }
    this.succeeded.add(name);
    return result.structuredContent;
  }

  /** Calls `name`; it must fail with `code` (any listed code when null). Returns the problem. */
  async refused(name, args, code) {
    const result = await this.#call(name, args);
    const shown = JSON.stringify(result);
    this.seen.push(shown);
    if (result.isError !== true) throw new Error(`${name} did not fail: ${shown}`);
    if (result.structuredContent !== undefined) {
      throw new Error(`${name}: an error result carries structuredContent: ${shown}`);
    }
    const first = result.content?.[0];
    if (first?.type !== 'text') throw new Error(`${name}: content[0] is not text: ${shown}`);
    let problem;
    try {
      problem = JSON.parse(first.text);
    } catch {
      throw new Error(`${name}: content[0].text is not JSON: ${first.text}`);
    }
    const { codes, validate } = this.checker.problem;
    if (!validate(problem)) {
      throw new Error(`${name}: the problem does not match errors.json: ${this.checker.ajv.errorsText(validate.errors)}`);
    }
    if (!codes.has(problem.code)) throw new Error(`${name}: unknown code ${problem.code}`);
    if (typeof problem.message !== 'string' || problem.message === '') {
      throw new Error(`${name}: no message in ${first.text}`);
    }
    if (code !== null && problem.code !== code) {
      throw new Error(`${name}: expected ${code}, got ${problem.code}: ${problem.message}`);
    }
    this.failed.add(name);
    return problem;
  }
}

/** `basis orchestrator keys create --role ROLE` against the orchestrator's database. */
export function createKey(bin, orch, role) {
  return execFileSync(bin, ['orchestrator', 'keys', 'create', '--role', role, '--db', orch.db], {
    env: { PATH: process.env.PATH, HOME: orch.home, BASIS_HOME: orch.home },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** POST /api/tasks, with the client key unless it is null; returns { status, body }. */
export async function postTaskAs(orch, clientKey, task) {
  const headers = { 'content-type': 'application/json' };
  if (clientKey !== null) headers.authorization = `Bearer ${clientKey}`;
  const res = await fetch(`${orch.url}/api/tasks`, { method: 'POST', headers, body: JSON.stringify(task) });
  return { status: res.status, body: await res.json() };
}

/** POST /api/tasks with the client key; returns the Task. */
export async function postTask(orch, clientKey, task) {
  const { status, body } = await postTaskAs(orch, clientKey, task);
  if (status !== 201) throw new Error(`POST /api/tasks: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** An Evaluator Agent's host: its 0600 env file names only the orchestrator and the key. */
export function evaluatorHome(orch, evaluatorKey) {
  const home = tempDir('evaluator');
  mkdirSync(home, { recursive: true });
  const path = join(home, 'worker.env');
  writeFileSync(path, `BASIS_ORCHESTRATOR_URL=${orch.url}\nBASIS_EVALUATOR_KEY=${evaluatorKey}\n`, {
    mode: 0o600,
  });
  chmodSync(path, 0o600);
  return home;
}

/** The worker token from `home`'s worker.env. */
export function tokenIn(home) {
  const m = readFileSync(join(home, 'worker.env'), 'utf8').match(/^BASIS_DEVICE_KEY=(.+)$/m);
  if (!m) throw new Error('no BASIS_DEVICE_KEY in worker.env');
  return m[1].trim();
}
