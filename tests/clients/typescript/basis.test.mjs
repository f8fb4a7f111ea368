// `basis mcp` driven by the official MCP TypeScript SDK over stdio and over streamable HTTP,
// against a real `basis orchestrator` (started by scripts/ts-client.sh): every tool on its
// success path (the Worker Agent onboarding and task flows, the Evaluator Agent's review,
// verdict and a dispute) and the failures an agent meets first. Every result is checked by
// lib.mjs's Session against the MCP contract with strict Ajv (JSON Schema 2020-12); the worker
// token and the evaluator key never appear in a result or in the server's stderr; and nothing
// (the SDK's own validator included) logs a warning such as `unknown format`.
//
//   BASIS_BIN=… BASIS_ORCH_URL=… BASIS_ORCH_DB=… BASIS_ORCH_HOME=… node --test

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  Session,
  closedPort,
  connect,
  consoleLines,
  createKey,
  evaluatorHome,
  postTask,
  postTaskAs,
  problemSchema,
  strictAjv,
  tempDir,
  tokenIn,
} from './lib.mjs';

const bin = process.env.BASIS_BIN;
const orch = {
  url: process.env.BASIS_ORCH_URL,
  db: process.env.BASIS_ORCH_DB,
  home: process.env.BASIS_ORCH_HOME,
};
if (!bin || !orch.url || !orch.db || !orch.home) {
  throw new Error('set BASIS_BIN, BASIS_ORCH_URL, BASIS_ORCH_DB and BASIS_ORCH_HOME (scripts/ts-client.sh does)');
}

const WALLET = '0x52908400098527886E0F7030069857D2E4169EE7';
// The same address with one letter's case flipped: its EIP-55 checksum fails.
const BAD_CHECKSUM = '0x52908400098527886E0F7030069857D2E4169Ee7';
const PRIVATE_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const MISSING_TASK = `task-${'0'.repeat(32)}`;
const MISSING_SUBMISSION = `sub-${'0'.repeat(32)}`;
const TOOLS = [
  'check_hardware', 'claim_task', 'dispute_output', 'execute_task', 'fetch_tasks',
  'get_leaderboard', 'get_rewards', 'get_submission', 'network_status', 'register_worker', 'release_task', 'rotate_key', 'start_worker',
  'stop_worker', 'submit_output', 'verify_online', 'verify_output', 'worker_status', 'write_env',
];

const checker = strictAjv();
checker.problem = problemSchema(checker.ajv);
let clientKey;
let evaluatorKey;

before(() => {
  clientKey = createKey(bin, orch, 'client');
  evaluatorKey = createKey(bin, orch, 'evaluator');
});

const now = () => Math.floor(Date.now() / 1000);

/** An inference task for the echo runtime's `tiny` model. */
const inferenceTask = (prompt) => ({
  description: `answer: ${prompt}`,
  criteria: ['answers the question', 'is one sentence'],
  required_capabilities: ['runtime:echo', 'model:tiny'],
  reward: '1000',
  deadline: now() + 3600,
  output_format: 'text',
  claim_ttl_s: 300,
  input: { model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 64 },
});

/** A task without input: the agent writes the output (json). */
const agentTask = () => ({
  description: 'write a haiku about GPUs as {"haiku": "..."}',
  criteria: ['is a haiku'],
  required_capabilities: [],
  reward: '500',
  deadline: now() + 3600,
  output_format: 'json',
  claim_ttl_s: 300,
});

for (const transport of ['stdio', 'http']) {
  describe(`basis mcp over ${transport}`, { timeout: 90_000 }, () => {
    const home = tempDir(`worker-${transport}`);
    const workerId = `ts-${transport}-1`;
    const seen = [];
    let conn;
    let s;
    let evaluator;
    let ev;
    const ids = {};

    before(async () => {
      conn = await connect(bin, transport, home);
      s = new Session(conn, checker, seen);
    });

    after(async () => {
      // Never leave a supervisor behind, whatever failed.
      if (conn && !s.succeeded.has('stop_worker')) {
        await conn.client.callTool({ name: 'stop_worker', arguments: {} }).catch(() => {});
      }
      await evaluator?.close().catch(() => {});
      await conn?.close().catch(() => {});
    });

    it('lists every tool; each schema compiles in strict mode', async () => {
      const tools = await s.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
      assert.deepEqual(s.schemaErrors, [], 'schemas that do not compile in strict mode');
      assert.deepEqual(checker.findings, [], 'Ajv reported strictness findings');
    });

    it('refuses the task tools before onboarding', async () => {
      // No env file yet: the worker tools need one (reading a submission needs the worker's
      // token or an evaluator key from it); listing tasks reaches no orchestrator (the
      // server's default URL is the discard port).
      await s.refused('claim_task', { task_id: MISSING_TASK }, 'ENV_INCOMPLETE');
      await s.refused('submit_output', { task_id: MISSING_TASK, output: 'hello' }, 'ENV_INCOMPLETE');
      await s.refused('fetch_tasks', { only_matching: true }, 'ORCHESTRATOR_UNREACHABLE');
      await s.refused('get_submission', { submission_id: MISSING_SUBMISSION }, 'ENV_INCOMPLETE');
    });

    it('refuses bad write_env inputs without echoing them', async () => {
      const base = { worker_id: workerId, runtime: 'echo', orchestrator_url: orch.url };
      await s.refused('write_env', { ...base, wallet: BAD_CHECKSUM }, 'WALLET_CHECKSUM_MISMATCH');
      const key = await s.refused('write_env', { ...base, wallet: PRIVATE_KEY }, 'PRIVATE_KEY_REFUSED');
      assert.ok(!JSON.stringify(key).includes(PRIVATE_KEY.slice(2)), 'the key was echoed');
      await s.refused('write_env', { ...base, wallet: WALLET, worker_id: 'GPU_Box' }, 'INVALID_WORKER_ID');
    });

    it('checks the hardware', async () => {
      const hw = await s.ok('check_hardware', {});
      assert.ok(Array.isArray(hw.gpus));
      assert.ok(hw.recommendation.runtime);
    });

    it('writes the env file, then registers (not while the orchestrator is down)', async () => {
      const written = await s.ok('write_env', {
        wallet: WALLET, worker_id: workerId, runtime: 'echo', models: ['tiny'], orchestrator_url: orch.url,
      });
      assert.equal(written.mode, '0600');
      assert.match(written.key_fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      // Written, not registered yet: the orchestrator does not know this worker.
      await s.refused('claim_task', { task_id: MISSING_TASK }, 'WORKER_NOT_FOUND');
      await s.refused('get_submission', { submission_id: MISSING_SUBMISSION }, 'SUBMISSION_NOT_FOUND');
      const down = `http://127.0.0.1:${await closedPort()}`;
      // Another orchestrator than the env file's is a deliberate move.
      await s.refused('register_worker', { orchestrator_url: down }, 'INVALID_ARGUMENT');
      await s.refused('register_worker', { orchestrator_url: down, new_orchestrator: true }, 'ORCHESTRATOR_UNREACHABLE');
      // The URL that answered last is the one kept: name the running orchestrator again.
      const registered = await s.ok('register_worker', { orchestrator_url: orch.url });
      assert.equal(registered.record.worker_id, workerId);
      assert.equal(registered.created, true);
      const status = await s.ok('network_status', {});
      assert.equal(status.reachable, true);
      assert.equal(status.registered, true);
      assert.equal(status.credential_matches, true);
      assert.equal(registered.record.key_fingerprint, written.key_fingerprint);
    });

    it('starts the worker and sees it online', async () => {
      const started = await s.ok('start_worker', {});
      assert.ok(started.pid > 0);
      const online = await s.ok('verify_online', { wait_s: 30 });
      assert.equal(online.online, true, JSON.stringify(online.checks));
      const status = await s.ok('worker_status', { log_lines: 5 });
      assert.equal(status.running, true);
    });

    it('fetches, claims, executes and submits a task', async () => {
      const prompt = `what is the capital of France (${transport})`;
      // The orchestrator takes tasks only from holders of a client key.
      const keyless = await postTaskAs(orch, null, inferenceTask(prompt));
      assert.equal(keyless.status, 401);
      assert.equal(keyless.body.error?.code, 'CLIENT_KEY_REQUIRED');
      const task = await postTask(orch, clientKey, inferenceTask(prompt));
      assert.match(task.client, /^key:[0-9a-f]{8}$/, 'posted with the client key');
      const page = await s.ok('fetch_tasks', { only_matching: true });
      const listed = page.tasks.find((t) => t.task_id === task.task_id);
      assert.ok(listed, `${task.task_id} is not listed`);
      assert.equal(listed.capabilities_match, true);
      assert.equal(listed.has_input, true);
      const claim = await s.ok('claim_task', { task_id: task.task_id });
      assert.equal(claim.worker_id, workerId);
      const run = await s.ok('execute_task', { task_id: task.task_id });
      assert.equal(run.output, `echo: ${prompt}`);
      const submitted = await s.ok('submit_output', {
        task_id: task.task_id, output: run.output, usage: run.usage, duration_ms: run.timings.total_ms,
      });
      assert.equal(submitted.status, 'submitted');
      assert.equal(submitted.created, true);
      const shown = await s.ok('get_submission', { submission_id: submitted.submission_id });
      assert.equal(shown.output_hash_verified, true);
      ids.passed = { submission: submitted.submission_id, output: run.output };
    });

    it('the Evaluator Agent reviews and passes it', async () => {
      evaluator = await connect(bin, transport, evaluatorHome(orch, evaluatorKey));
      ev = new Session(evaluator, checker, seen);
      await ev.listTools();
      const id = ids.passed.submission;
      const review = await ev.ok('verify_output', { submission_id: id });
      assert.equal(review.mode, 'review');
      assert.equal(review.hash_verified, true);
      assert.equal(review.output, ids.passed.output);
      const verdict = { submission_id: id, score: 90, passed: true, reasons: ['answers it', 'one sentence'] };
      const settled = await ev.ok('verify_output', verdict);
      assert.equal(settled.status, 'completed');
      await ev.refused('verify_output', verdict, 'ALREADY_EVALUATED');
      const shown = await s.ok('get_submission', { submission_id: id });
      assert.equal(shown.status, 'completed');
      assert.equal(shown.credit.unpaid, 'simulated');
      // The pass counts on the leaderboard, where this worker finds its own rank.
      const board = await s.ok('get_leaderboard', { window: 'all', by: 'tasks_passed' });
      assert.equal(board.worker_id, workerId);
      assert.equal(board.you.worker_id, workerId);
      assert.equal(board.you.rank, 1);
      assert.equal(board.you.tasks_passed, 1);
      // Its rewards: the echo pass is credited 0 (simulated), pending until a batch closes.
      const rewards = await s.ok('get_rewards', {});
      assert.equal(rewards.scope, 'worker');
      assert.equal(rewards.worker_id, workerId);
      assert.equal(rewards.accrued, '0');
      assert.equal(rewards.credits[0].status, 'pending');
      assert.equal(rewards.credits[0].unpaid, 'simulated');
      assert.deepEqual(rewards.batches, []);
    });

    it('releases a claim, then submits output the evaluator rejects, and disputes', async () => {
      const task = await postTask(orch, clientKey, agentTask());
      await s.ok('claim_task', { task_id: task.task_id });
      await s.refused('execute_task', { task_id: task.task_id }, 'TASK_HAS_NO_INPUT');
      const released = await s.ok('release_task', { task_id: task.task_id });
      assert.equal(released.task.status, 'open');
      await s.ok('claim_task', { task_id: task.task_id });
      const output = '{"haiku": "fans hum / tensors flow / the night shift"}';
      const sub = await s.ok('submit_output', { task_id: task.task_id, output });
      const id = sub.submission_id;
      const dispute = { submission_id: id, reason: 'it is a haiku' };
      await s.refused('dispute_output', dispute, 'NOT_DISPUTABLE');
      const rejected = await ev.ok('verify_output', {
        submission_id: id, score: 20, passed: false, reasons: ['not 5-7-5'],
      });
      assert.equal(rejected.status, 'rejected');
      const disputed = await s.ok('dispute_output', dispute);
      assert.equal(disputed.status, 'disputed');
    });

    it('stops the worker', async () => {
      const stopped = await s.ok('stop_worker', {});
      assert.equal(stopped.stopped, true);
      assert.equal(stopped.was_running, true);
    });

    it('rotates the device key', async () => {
      const before = tokenIn(home);
      const rotated = await s.ok('rotate_key', {});
      assert.match(rotated.key_fingerprint, /^SHA256:/);
      assert.notEqual(rotated.key_fingerprint, rotated.previous_key_fingerprint);
      assert.equal(rotated.record.key_fingerprint, rotated.key_fingerprint);
      assert.notEqual(tokenIn(home), before);
    });

    it('called every tool on a success path and the required failure paths', () => {
      const succeeded = new Set([...s.succeeded, ...(ev?.succeeded ?? [])]);
      assert.deepEqual([...succeeded].sort(), TOOLS);
      for (const tool of ['write_env', 'register_worker', 'fetch_tasks', 'claim_task', 'get_submission', 'submit_output']) {
        assert.ok(s.failed.has(tool), `${tool} was not refused once`);
      }
    });

    it('shows neither the device key nor the evaluator key', () => {
      const token = tokenIn(home);
      const stderrs = [conn.stderr(), evaluator.stderr()].join('\n');
      for (const [what, text] of [['a result', seen.join('\n')], ['the servers\' stderr', stderrs]]) {
        assert.ok(!text.includes(token), `the worker token leaked into ${what}`);
        assert.ok(!text.includes(evaluatorKey), `the evaluator key leaked into ${what}`);
        assert.ok(!text.includes(clientKey), `the client key leaked into ${what}`);
      }
    });
  });
}

describe('the client side', () => {
  it('logged nothing (no unknown format, no strictness finding)', () => {
    assert.deepEqual(consoleLines, []);
    assert.deepEqual(checker.findings, []);
  });
});
