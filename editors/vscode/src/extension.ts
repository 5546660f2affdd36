/**
 * coder-lsp for VS Code: starts `coder-lsp serve --stdio` through vscode-languageclient, which
 * turns the server's `textDocument/inlineCompletion` answers into ghost text, and shows the
 * engine's state in the status bar. The only module that touches the VS Code API; the logic
 * lives in `logic.ts`.
 */
import * as vscode from 'vscode';
import {
  ClientCapabilities,
  ConfigurationParams,
  DidChangeConfigurationNotification,
  FeatureState,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCreateParams,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
} from 'vscode-languageclient/node';
import {
  NAMESPACE,
  isEngineProgressToken,
  STATUS_NOTIFICATION,
  Profile,
  StatusModel,
  ProgressValue,
  applyProgress,
  applyStatus,
  explicitSettings,
  formatStatus,
  initialStatus,
  parseStatusParams,
  profileChoices,
  serverCommand,
  serverKeys,
  stripClientKeys,
} from './logic';

const LANGUAGES = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'java',
  'c',
  'cpp',
  'go',
  'rust',
];
const STOP_TIMEOUT_MS = 10_000;

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new Controller(context);
  await controller.start();
}

export async function deactivate(): Promise<void> {
  await controller?.dispose();
  controller = undefined;
}

class Controller {
  private readonly output: vscode.LogOutputChannel;
  private readonly traceOutput: vscode.LogOutputChannel;
  private readonly item: vscode.StatusBarItem;
  private readonly keys: string[];
  private readonly profiles: Profile[];
  private client: LanguageClient | undefined;
  private status: StatusModel;
  /** Starts and stops run one after another, never overlapping. */
  private queue: Promise<void> = Promise.resolve();

  constructor(context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('coder-lsp', { log: true });
    this.traceOutput = vscode.window.createOutputChannel('coder-lsp (trace)', { log: true });
    this.item = vscode.window.createStatusBarItem('coderLsp.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'coder-lsp';
    this.item.command = 'coderLsp.showMenu';
    const configuration = context.extension.packageJSON?.contributes?.configuration ?? [];
    const categories: Array<{ properties?: Record<string, { enum?: unknown[] }> }> = Array.isArray(configuration)
      ? configuration
      : [configuration];
    const properties = Object.assign({}, ...categories.map((c) => c.properties ?? {}));
    this.keys = serverKeys(Object.keys(properties));
    this.profiles = profileChoices(properties[`${NAMESPACE}.profile`]?.enum);
    this.status = initialStatus(this.config().get<boolean>('completion.enabled', true));
    context.subscriptions.push(
      this.output,
      this.traceOutput,
      this.item,
      vscode.commands.registerCommand('coderLsp.restartServer', () => this.restart()),
      vscode.commands.registerCommand('coderLsp.showLogs', () => this.output.show(true)),
      vscode.commands.registerCommand('coderLsp.toggleCompletions', () => this.toggleCompletions()),
      vscode.commands.registerCommand('coderLsp.switchProfile', () => this.switchProfile()),
      vscode.commands.registerCommand('coderLsp.showMenu', () => this.showMenu()),
      vscode.workspace.onDidChangeConfiguration((event) => this.onConfigurationChanged(event)),
    );
    this.render();
    this.item.show();
  }

  start(): Promise<void> {
    return this.enqueue(() => this.startClient());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.stopClient();
      await this.startClient();
    });
  }

  dispose(): Promise<void> {
    return this.enqueue(() => this.stopClient());
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step, step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private config(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(NAMESPACE, scope ?? this.defaultScope());
  }

  private defaultScope(): vscode.Uri | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  /** The server's settings as set in VS Code (see `explicitSettings`). */
  private serverSettings(scope?: vscode.ConfigurationScope): Record<string, unknown> {
    const config = this.config(scope);
    return explicitSettings(this.keys, (key) => config.inspect(key));
  }

  // --- the language client ------------------------------------------------------------------

  private async startClient(): Promise<void> {
    const config = this.config();
    const folder = this.defaultScope();
    const { command, args } = serverCommand(config.get<string>('server.path'), config.get<string[]>('server.args'), {
      workspaceFolder: folder?.scheme === 'file' ? folder.fsPath : undefined,
      userHome: process.env.HOME ?? process.env.USERPROFILE ?? '',
    });
    const env = { ...process.env, ...config.get<Record<string, string>>('server.env', {}) };
    const serverOptions: ServerOptions = { command, args, options: { env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.flatMap((language) => [
        { scheme: 'file', language },
        { scheme: 'untitled', language },
      ]),
      outputChannel: this.output,
      traceOutputChannel: this.traceOutput,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // The extension runs only in trusted workspaces (package.json: untrustedWorkspaces), and
      // says so: the workspace's own coder-lsp.toml may then set security-sensitive keys.
      initializationOptions: () => ({
        ...this.serverSettings(),
        workspaceTrusted: vscode.workspace.isTrusted,
      }),
      middleware: {
        workspace: {
          configuration: async (params, token, next) => this.configuration(params, token, next),
        },
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.status.completionsEnabled ? next(document, position, context, token) : undefined,
      },
    };
    const client = new LanguageClient(NAMESPACE, 'coder-lsp', serverOptions, clientOptions);
    client.registerFeature(new ProgressFeature(client, (value) => this.update(applyProgress(this.status, value))));
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      const parsed = parseStatusParams(params);
      if (parsed) {
        this.output.info(`engine ${parsed.state}${parsed.reason ? `: ${parsed.reason}` : ''}`);
        this.update(applyStatus(this.status, parsed));
      }
    });
    client.onDidChangeState((event) => {
      if (this.client !== client) {
        return;
      }
      if (event.newState === State.Running) {
        this.update({ ...this.status, server: 'running' });
      } else if (event.newState === State.Stopped) {
        this.update({ ...this.status, server: 'stopped', engine: undefined });
      }
    });
    this.client = client;
    this.update({ ...initialStatus(this.status.completionsEnabled) });
    this.output.info(`starting ${[command, ...args].join(' ')}`);
    try {
      await client.start();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.update({ ...this.status, server: 'failed', serverError: `${command}: ${reason}` });
      this.output.error(`could not start the server: ${reason}`);
      void vscode.window
        .showErrorMessage(
          `coder-lsp: could not start \`${command}\` (${reason}). Install the server ` +
            "(pip install 'coder-lsp[cpu]') or set coderLsp.server.path.",
          'Open Settings',
          'Show Logs',
        )
        .then((choice) => {
          if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', 'coderLsp.server');
          } else if (choice === 'Show Logs') {
            this.output.show(true);
          }
        });
    }
  }

  private async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    try {
      if (client.isRunning()) {
        await client.stop(STOP_TIMEOUT_MS);
      }
    } catch (error) {
      this.output.warn(`stopping the server: ${String(error)}`);
    }
    try {
      await client.dispose(STOP_TIMEOUT_MS);
    } catch {
      // Already stopped.
    }
  }

  /** `workspace/configuration`: the `coderLsp` section as set by the user, client keys out. */
  private async configuration(
    params: ConfigurationParams,
    token: vscode.CancellationToken,
    next: (params: ConfigurationParams, token: vscode.CancellationToken) => unknown,
  ): Promise<unknown[]> {
    const fallback = await Promise.resolve(next(params, token));
    const results = Array.isArray(fallback) ? [...fallback] : params.items.map(() => null);
    params.items.forEach((item, index) => {
      const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
      if (item.section === NAMESPACE) {
        results[index] = this.serverSettings(scope);
      } else if (item.section?.startsWith(`${NAMESPACE}.`)) {
        results[index] = stripClientKeys(results[index]);
      }
    });
    return results;
  }

  private onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (!event.affectsConfiguration(NAMESPACE)) {
      return;
    }
    if (event.affectsConfiguration(`${NAMESPACE}.server`)) {
      this.output.info('server settings changed; restarting the server');
      void this.restart();
      return;
    }
    const enabled = this.config().get<boolean>('completion.enabled', true);
    if (enabled !== this.status.completionsEnabled) {
      this.update({ ...this.status, completionsEnabled: enabled });
    }
    // The server asks for the section itself (workspace/configuration) and restarts its
    // engine when the profile or engine settings changed.
    const client = this.client;
    if (client?.isRunning()) {
      client
        .sendNotification(DidChangeConfigurationNotification.type, { settings: null })
        .catch((error: unknown) => this.output.warn(`didChangeConfiguration: ${String(error)}`));
    }
  }

  // --- status bar -------------------------------------------------------------------------

  private update(model: StatusModel): void {
    this.status = model;
    this.render();
  }

  private render(): void {
    const view = formatStatus(this.status);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.accessibilityInformation = { label: view.tooltip };
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  // --- commands ---------------------------------------------------------------------------

  /** The most specific settings level that sets `key`, so an update lands where it counts. */
  private target(key: string): vscode.ConfigurationTarget {
    const info = this.config().inspect(key);
    if (info?.workspaceFolderValue !== undefined) {
      return vscode.ConfigurationTarget.WorkspaceFolder;
    }
    if (info?.workspaceValue !== undefined) {
      return vscode.ConfigurationTarget.Workspace;
    }
    return vscode.ConfigurationTarget.Global;
  }

  private async toggleCompletions(): Promise<void> {
    const enabled = !this.config().get<boolean>('completion.enabled', true);
    // The status bar item follows (onConfigurationChanged).
    await this.config().update('completion.enabled', enabled, this.target('completion.enabled'));
  }

  private async switchProfile(): Promise<void> {
    const current = this.config().get<string | null>('profile', null);
    const items: Array<vscode.QuickPickItem & { profile: string | null }> = [
      ...this.profiles.map((p) => ({
        label: p.name,
        description: p.name === current ? `${p.description} (current)` : p.description,
        profile: p.name,
      })),
      {
        label: 'auto',
        description: current === null ? 'pick by hardware (current)' : 'pick by hardware',
        profile: null,
      },
    ];
    const choice = await vscode.window.showQuickPick(items, {
      title: 'coder-lsp: Switch Profile',
      placeHolder: 'The model the engine runs; the server restarts its engine on the change',
    });
    if (choice === undefined) {
      return;
    }
    await this.config().update('profile', choice.profile ?? undefined, this.target('profile'));
  }

  private async showMenu(): Promise<void> {
    const actions: Array<vscode.QuickPickItem & { command: string }> = [
      { label: '$(output) Show Logs', command: 'coderLsp.showLogs' },
      { label: '$(debug-restart) Restart Server', command: 'coderLsp.restartServer' },
      {
        label: this.status.completionsEnabled ? '$(circle-slash) Turn Completions Off' : '$(check) Turn Completions On',
        command: 'coderLsp.toggleCompletions',
      },
      { label: '$(server-environment) Switch Profile', command: 'coderLsp.switchProfile' },
    ];
    const choice = await vscode.window.showQuickPick(actions, { title: formatStatus(this.status).tooltip });
    if (choice) {
      await vscode.commands.executeCommand(choice.command);
    }
  }
}

/**
 * Work-done progress: the engine's loading feeds the status bar item, other work (indexing)
 * shows in the window's progress area. Replaces vscode-languageclient's own handler of
 * `window/workDoneProgress/create` (a client holds one handler per token, so the engine's
 * progress could not reach both).
 */
class ProgressFeature implements StaticFeature {
  private readonly active = new Set<vscode.Disposable>();

  constructor(
    private readonly client: LanguageClient,
    private readonly onEngine: (value: ProgressValue) => void,
  ) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = { ...capabilities.window, workDoneProgress: true };
  }

  getState(): FeatureState {
    return { kind: 'static' };
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params: WorkDoneProgressCreateParams) =>
      this.track(params.token),
    );
  }

  clear(): void {
    for (const disposable of this.active) {
      disposable.dispose();
    }
    this.active.clear();
  }

  private track(token: string | number): void {
    if (isEngineProgressToken(token)) {
      const handler = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
        this.onEngine(value as ProgressValue);
        if (value.kind === 'end') {
          handler.dispose();
          this.active.delete(handler);
        }
      });
      this.active.add(handler);
      return;
    }
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Window }, async (progress) => {
      let last = 0;
      let title = '';
      const handler = this.client.onProgress(
        WorkDoneProgress.type,
        token,
        (value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
          if (value.kind === 'end') {
            close.dispose();
            return;
          }
          if (value.kind === 'begin') {
            title = value.title;
          }
          const message = [title, value.message].filter(Boolean).join(': ');
          const increment = value.percentage !== undefined ? Math.max(0, value.percentage - last) : undefined;
          last = value.percentage ?? last;
          progress.report({ message, increment });
        },
      );
      const close = {
        dispose: () => {
          handler.dispose();
          this.active.delete(close);
          finish();
        },
      };
      this.active.add(close);
      await done;
    });
  }
}
