/**
 * The extension's pure logic: which settings reach the server, how the engine's state reads in
 * the status bar, how the server command is put together. No `vscode` import, so `node --test`
 * runs it without an editor.
 */

/** The settings namespace, the `workspace/configuration` section the server asks for. */
export const NAMESPACE = 'coderLsp';
/** Top-level names under {@link NAMESPACE} that only the extension reads. */
export const CLIENT_SECTIONS: readonly string[] = ['server', 'trace'];
/** The `$/progress` token of the engine's first load; later loads add `/<n>`. */
export const ENGINE_PROGRESS_TOKEN = 'coder-lsp/engine';

/** Whether a `$/progress` token is one of the engine's loads (the first, or a restart). */
export function isEngineProgressToken(token: string | number): boolean {
  return (
    typeof token === 'string' &&
    (token === ENGINE_PROGRESS_TOKEN || token.startsWith(`${ENGINE_PROGRESS_TOKEN}/`))
  );
}
/** The server's notification with the engine's state. */
export const STATUS_NOTIFICATION = 'coderLsp/status';

export interface Profile {
  name: string;
  description: string;
}

/** The server's profiles (`coder-lsp models`), for the profile picker. */
export const PROFILES: readonly Profile[] = [
  { name: 'tiny-moe', description: 'random-weight DeepSeek-V2 MoE for tests on the CPU' },
  { name: 'cpu-small', description: 'Gemma 3 270M on the CPU; the default without a GPU' },
  { name: 'deepseek-v2-lite', description: 'DeepSeek-Coder-V2-Lite on one GPU; the default with one' },
  { name: 'deepseek-v2', description: 'DeepSeek-Coder-V2 236B for fixes on a GPU cluster' },
];

/**
 * The profiles to offer: those of the `profile` setting's enum (generated from the server's
 * schema, so a new server profile shows up), known ones first in {@link PROFILES}' order.
 */
export function profileChoices(settingEnum: readonly unknown[] | undefined): Profile[] {
  const names = (settingEnum ?? PROFILES.map((p) => p.name)).filter((v): v is string => typeof v === 'string');
  const known = PROFILES.filter((p) => names.includes(p.name));
  const extra = names.filter((n) => !PROFILES.some((p) => p.name === n)).map((name) => ({ name, description: '' }));
  return [...known, ...extra];
}

/** What `WorkspaceConfiguration.inspect` tells about one setting. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** Is `key` (`section.key`, without the namespace) one only the extension reads? */
export function isClientKey(key: string): boolean {
  return CLIENT_SECTIONS.includes(key.split('.')[0]);
}

/**
 * The server's setting names (`engine.model`, `profile` ...) among the contributed setting
 * names (`coderLsp.engine.model` ...).
 */
export function serverKeys(contributed: Iterable<string>): string[] {
  const prefix = `${NAMESPACE}.`;
  const keys: string[] = [];
  for (const name of contributed) {
    if (name.startsWith(prefix)) {
      const key = name.slice(prefix.length);
      if (!isClientKey(key)) {
        keys.push(key);
      }
    }
  }
  return keys;
}

/**
 * The server's settings as the user set them: only the values set somewhere (user,
 * workspace or folder settings; the most specific wins), nested by section, camelCase as
 * the server expects. Defaults are left out so that the workspace's `coder-lsp.toml` or
 * `pyproject.toml` still counts where the user set nothing in VS Code, and the extension's
 * own keys are never sent: the server rejects keys it does not know.
 */
export function explicitSettings(
  keys: Iterable<string>,
  inspect: (key: string) => Inspected | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (isClientKey(key)) {
      continue;
    }
    const info = inspect(key);
    if (info === undefined) {
      continue;
    }
    let value: unknown = undefined;
    for (const candidate of [info.workspaceFolderValue, info.workspaceValue, info.globalValue]) {
      if (candidate !== undefined) {
        value = candidate;
        break;
      }
    }
    if (value === undefined) {
      continue;
    }
    setPath(out, key.split('.'), value);
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      node[part] = {};
    }
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/**
 * A copy of a `coderLsp` settings object without the extension's own keys: what the client
 * answers when the server asks for the section in any other way than through
 * {@link explicitSettings}.
 */
export function stripClientKeys(section: unknown): unknown {
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    return section;
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section)) {
    if (!CLIENT_SECTIONS.includes(key)) {
      out[key] = value;
    }
  }
  return out;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/**
 * The server's program and arguments from `server.path` and `server.args`: `${workspaceFolder}`,
 * `${userHome}` and a leading `~` expanded; empty settings fall back to `coder-lsp serve --stdio`.
 */
export function serverCommand(
  path: string | undefined,
  args: readonly string[] | undefined,
  vars: { workspaceFolder?: string; userHome: string },
): ServerCommand {
  const expand = (text: string): string => {
    let out = text;
    if (out === '~' || out.startsWith('~/')) {
      out = vars.userHome + out.slice(1);
    }
    out = out.split('${userHome}').join(vars.userHome);
    if (vars.workspaceFolder !== undefined) {
      out = out.split('${workspaceFolder}').join(vars.workspaceFolder);
    }
    return out;
  };
  const command = path && path.trim() ? expand(path.trim()) : 'coder-lsp';
  const finalArgs = args && args.length ? args.map(expand) : ['serve', '--stdio'];
  return { command, args: finalArgs };
}

// --- the engine's state in the status bar ------------------------------------------------

export type EngineState = 'starting' | 'ready' | 'failed' | 'stopped';

/** What the extension knows about the server and its engine. */
export interface StatusModel {
  /** The server process: not started yet, running, or could not be started / exited. */
  server: 'starting' | 'running' | 'failed' | 'stopped';
  /** Why the server process failed (spawn error, crash). */
  serverError?: string;
  /** From `coderLsp/status`. */
  engine?: EngineState;
  reason?: string;
  model?: string;
  profile?: string | null;
  /** From `$/progress` of the engine's loading. */
  percentage?: number;
  message?: string;
  completionsEnabled: boolean;
}

export function initialStatus(completionsEnabled = true): StatusModel {
  return { server: 'starting', completionsEnabled };
}

/** The params of a `coderLsp/status` notification, checked. */
export interface StatusParams {
  state: EngineState;
  reason: string;
  model: string;
  profile: string | null;
}

const STATES: readonly string[] = ['starting', 'ready', 'failed', 'stopped'];

export function parseStatusParams(params: unknown): StatusParams | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  const p = params as Record<string, unknown>;
  if (typeof p.state !== 'string' || !STATES.includes(p.state)) {
    return undefined;
  }
  return {
    state: p.state as EngineState,
    reason: typeof p.reason === 'string' ? p.reason : '',
    model: typeof p.model === 'string' ? p.model : '',
    profile: typeof p.profile === 'string' ? p.profile : null,
  };
}

/** The model after a `coderLsp/status` notification. */
export function applyStatus(model: StatusModel, params: StatusParams): StatusModel {
  const next: StatusModel = {
    ...model,
    server: 'running',
    engine: params.state,
    reason: params.reason,
    model: params.model,
    profile: params.profile,
  };
  if (params.state !== 'starting') {
    next.percentage = undefined;
    next.message = undefined;
  }
  return next;
}

/** `$/progress` values of the work-done protocol. */
export type ProgressValue =
  | { kind: 'begin'; title: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

/** The model after a `$/progress` value of the engine's token. */
export function applyProgress(model: StatusModel, value: ProgressValue): StatusModel {
  const next: StatusModel = { ...model, server: 'running' };
  switch (value.kind) {
    case 'begin':
      next.engine = 'starting';
      next.percentage = value.percentage ?? 0;
      next.message = value.message ?? value.title;
      break;
    case 'report':
      if (value.percentage !== undefined) {
        next.percentage = value.percentage;
      }
      if (value.message !== undefined) {
        next.message = value.message;
      }
      break;
    case 'end': {
      // "ready" or "failed: <reason>"; `coderLsp/status` follows with the same news.
      const message = value.message ?? '';
      if (message.startsWith('failed')) {
        next.engine = 'failed';
        next.reason = message.replace(/^failed:\s*/, '') || next.reason;
      } else if (message === 'ready') {
        next.engine = 'ready';
      }
      next.percentage = undefined;
      next.message = undefined;
      break;
    }
  }
  return next;
}

export interface StatusView {
  /** The status bar text (with `$(icon)` codicons). */
  text: string;
  /** The hover text; also the item's accessible label. */
  tooltip: string;
  severity: 'normal' | 'warning' | 'error';
}

function profileName(model: StatusModel): string {
  return model.profile ? ` ${model.profile}` : '';
}

/** How the status bar item shows the model. */
export function formatStatus(model: StatusModel): StatusView {
  if (model.server === 'failed') {
    const reason = model.serverError || 'the server could not be started';
    return {
      text: '$(error) coder-lsp: failed',
      tooltip: `coder-lsp failed: ${reason}. See coder-lsp: Show Logs.`,
      severity: 'error',
    };
  }
  if (model.server === 'stopped') {
    return {
      text: '$(debug-stop) coder-lsp: stopped',
      tooltip: 'coder-lsp: the server is stopped. Run coder-lsp: Restart Server.',
      severity: 'warning',
    };
  }
  const off = model.completionsEnabled ? '' : ' (completions off)';
  switch (model.engine) {
    case 'ready': {
      const icon = model.completionsEnabled ? '$(sparkle)' : '$(circle-slash)';
      const what = model.model ? ` (${model.model})` : '';
      return {
        text: `${icon} coder-lsp${profileName(model)}`,
        tooltip: `coder-lsp: ready, profile${profileName(model) || ' auto'}${what}${off}`,
        severity: 'normal',
      };
    }
    case 'failed': {
      const reason = model.reason || 'unknown reason';
      return {
        text: '$(error) coder-lsp: failed',
        tooltip: `coder-lsp: the${profileName(model)} engine failed: ${reason}`,
        severity: 'error',
      };
    }
    case 'stopped':
      return {
        text: '$(debug-pause) coder-lsp: engine stopped',
        tooltip: `coder-lsp: the${profileName(model)} engine is stopped${off}`,
        severity: 'warning',
      };
    case 'starting':
    case undefined: {
      const pct = model.percentage !== undefined ? ` ${model.percentage}%` : '';
      const detail = model.message ? `: ${model.message}` : '';
      return {
        text: `$(loading~spin) coder-lsp: loading${pct}`,
        tooltip: `coder-lsp: loading${profileName(model)}${pct}${detail}${off}`,
        severity: 'normal',
      };
    }
  }
}
