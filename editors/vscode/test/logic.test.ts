import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  Inspected,
  applyProgress,
  applyStatus,
  explicitSettings,
  formatStatus,
  initialStatus,
  isClientKey,
  parseStatusParams,
  profileChoices,
  serverCommand,
  serverKeys,
  stripClientKeys,
  isEngineProgressToken,
} from '../src/logic';

const CONTRIBUTED = [
  'coderLsp.profile',
  'coderLsp.logLevel',
  'coderLsp.server.path',
  'coderLsp.server.args',
  'coderLsp.server.env',
  'coderLsp.trace.server',
  'coderLsp.engine.model',
  'coderLsp.completion.enabled',
  'coderLsp.completion.maxTokens',
  'coderLsp.completion.postprocess',
];

test('server keys leave out the extension-only settings', () => {
  assert.deepEqual(serverKeys(CONTRIBUTED), [
    'profile',
    'logLevel',
    'engine.model',
    'completion.enabled',
    'completion.maxTokens',
    'completion.postprocess',
  ]);
  assert.ok(isClientKey('server.path'));
  assert.ok(isClientKey('trace.server'));
  assert.ok(!isClientKey('serverless'));
  assert.ok(!isClientKey('completion.enabled'));
});

test('only values the user set are sent, nested and camelCase, the most specific level wins', () => {
  const values: Record<string, Inspected> = {
    profile: { defaultValue: null, globalValue: 'cpu-small', workspaceValue: 'tiny-moe' },
    logLevel: { defaultValue: 'info' },
    'engine.model': { defaultValue: null, workspaceFolderValue: '/m', globalValue: '/g' },
    'completion.enabled': { defaultValue: true, globalValue: false },
    'completion.maxTokens': { defaultValue: 64 },
    'completion.postprocess': { defaultValue: true, workspaceValue: false },
    'server.path': { defaultValue: 'coder-lsp', globalValue: '/venv/bin/python' },
  };
  const keys = [...serverKeys(CONTRIBUTED), 'server.path'];
  assert.deepEqual(
    explicitSettings(keys, (key) => values[key]),
    {
      profile: 'tiny-moe',
      engine: { model: '/m' },
      completion: { enabled: false, postprocess: false },
    },
  );
});

test('a value set to null is sent (null means auto)', () => {
  assert.deepEqual(
    explicitSettings(['profile'], () => ({ defaultValue: null, globalValue: null })),
    { profile: null },
  );
  assert.deepEqual(explicitSettings(['profile'], () => undefined), {});
});

test('stripping client keys from a whole section', () => {
  assert.deepEqual(
    stripClientKeys({ server: { path: 'x' }, trace: { server: 'off' }, completion: { maxTokens: 8 } }),
    { completion: { maxTokens: 8 } },
  );
  assert.equal(stripClientKeys(null), null);
  assert.deepEqual(stripClientKeys([1]), [1]);
});

test('server command: defaults and expansion', () => {
  const vars = { workspaceFolder: '/ws', userHome: '/home/u' };
  assert.deepEqual(serverCommand(undefined, undefined, vars), { command: 'coder-lsp', args: ['serve', '--stdio'] });
  assert.deepEqual(serverCommand('  ', [], vars), { command: 'coder-lsp', args: ['serve', '--stdio'] });
  assert.deepEqual(serverCommand('${workspaceFolder}/.venv/bin/coder-lsp', ['serve', '--stdio'], vars), {
    command: '/ws/.venv/bin/coder-lsp',
    args: ['serve', '--stdio'],
  });
  assert.deepEqual(serverCommand('~/bin/python', ['-m', 'lsp_server', 'serve', '--config', '${userHome}/c.toml'], vars), {
    command: '/home/u/bin/python',
    args: ['-m', 'lsp_server', 'serve', '--config', '/home/u/c.toml'],
  });
  assert.equal(serverCommand('${workspaceFolder}/x', undefined, { userHome: '/h' }).command, '${workspaceFolder}/x');
});

test('status params are checked', () => {
  assert.deepEqual(parseStatusParams({ state: 'ready', reason: '', model: '/m', profile: 'tiny-moe' }), {
    state: 'ready',
    reason: '',
    model: '/m',
    profile: 'tiny-moe',
  });
  assert.deepEqual(parseStatusParams({ state: 'failed', reason: 'boom', profile: null }), {
    state: 'failed',
    reason: 'boom',
    model: '',
    profile: null,
  });
  assert.equal(parseStatusParams({ state: 'weird' }), undefined);
  assert.equal(parseStatusParams(null), undefined);
});

test('loading shows the progress percentage and message', () => {
  let model = initialStatus();
  assert.match(formatStatus(model).text, /loading$/);
  model = applyProgress(model, { kind: 'begin', title: 'coder-lsp: loading tiny-moe', percentage: 0 });
  model = applyStatus(model, { state: 'starting', reason: 'loading', model: '/m', profile: 'tiny-moe' });
  model = applyProgress(model, { kind: 'report', message: 'importing vLLM', percentage: 20 });
  const view = formatStatus(model);
  assert.equal(view.text, '$(loading~spin) coder-lsp: loading 20%');
  assert.equal(view.tooltip, 'coder-lsp: loading tiny-moe 20%: importing vLLM');
  assert.equal(view.severity, 'normal');
});

test('ready names the profile and model', () => {
  let model = applyProgress(initialStatus(), { kind: 'begin', title: 't', percentage: 0 });
  model = applyProgress(model, { kind: 'end', message: 'ready' });
  model = applyStatus(model, { state: 'ready', reason: '', model: '/cache/tiny', profile: 'tiny-moe' });
  const view = formatStatus(model);
  assert.equal(view.text, '$(sparkle) coder-lsp tiny-moe');
  assert.equal(view.tooltip, 'coder-lsp: ready, profile tiny-moe (/cache/tiny)');
  assert.equal(model.percentage, undefined);
  const off = formatStatus({ ...model, completionsEnabled: false });
  assert.equal(off.text, '$(circle-slash) coder-lsp tiny-moe');
  assert.match(off.tooltip, /completions off/);
});

test('a failed engine shows its reason, from progress end or from the status notification', () => {
  let model = applyProgress(initialStatus(), { kind: 'begin', title: 't' });
  model = applyProgress(model, { kind: 'end', message: 'failed: no such model /nonexistent' });
  let view = formatStatus({ ...model, profile: 'tiny-moe' });
  assert.equal(view.text, '$(error) coder-lsp: failed');
  assert.equal(view.tooltip, 'coder-lsp: the tiny-moe engine failed: no such model /nonexistent');
  assert.equal(view.severity, 'error');
  model = applyStatus(model, { state: 'failed', reason: 'OSError: bad path', model: '/x', profile: 'tiny-moe' });
  view = formatStatus(model);
  assert.equal(view.tooltip, 'coder-lsp: the tiny-moe engine failed: OSError: bad path');
});

test('a server that could not start, and a stopped one', () => {
  const failed = formatStatus({ ...initialStatus(), server: 'failed', serverError: 'coder-lsp: spawn coder-lsp ENOENT' });
  assert.equal(failed.severity, 'error');
  assert.match(failed.tooltip, /spawn coder-lsp ENOENT/);
  const stopped = formatStatus({ ...initialStatus(), server: 'stopped' });
  assert.match(stopped.text, /stopped/);
  assert.equal(stopped.severity, 'warning');
});

test('a new load after a failure shows loading again', () => {
  let model = applyStatus(initialStatus(), { state: 'failed', reason: 'x', model: '', profile: 'p' });
  model = applyProgress(model, { kind: 'begin', title: 'coder-lsp: loading p', percentage: 0 });
  assert.equal(formatStatus(model).text, '$(loading~spin) coder-lsp: loading 0%');
});

test('profile choices follow the setting enum, known ones first', () => {
  const names = (values: readonly unknown[] | undefined) => profileChoices(values).map((p) => p.name);
  assert.deepEqual(names(['cpu-small', 'deepseek-v2', 'deepseek-v2-lite', 'tiny-moe', null]), [
    'tiny-moe',
    'cpu-small',
    'deepseek-v2-lite',
    'deepseek-v2',
  ]);
  assert.deepEqual(names(['cpu-small', 'qwen-coder', null]), ['cpu-small', 'qwen-coder']);
  assert.equal(names(undefined).length, 4);
});

test('engine progress tokens: the first load and restarts, nothing else', () => {
  assert.equal(isEngineProgressToken('coder-lsp/engine'), true);
  assert.equal(isEngineProgressToken('coder-lsp/engine/2'), true);
  assert.equal(isEngineProgressToken('coder-lsp/index'), false);
  assert.equal(isEngineProgressToken('coder-lsp/engineering'), false);
  assert.equal(isEngineProgressToken(7), false);
});
