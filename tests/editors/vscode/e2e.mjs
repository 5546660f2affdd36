// Drives VS Code (code-server) in headless Chromium through one coder-lsp session:
//   1. open the workspace, open a Python file; the extension starts the server;
//   2. wait for the engine's state in the status bar to go from loading (with %) to ready;
//   3. type, wait for the server's ghost text, accept it with Tab, save with Ctrl+S and read
//      the file back from disk;
//   4. point the engine at a model that does not exist (workspace settings file, as a user
//      would edit it); the server restarts its engine, which fails: the status bar item and a
//      notification must say so, with the reason.
// Usage: node e2e.mjs CONFIG.json   (written by tests/editors/test_vscode.py)
// Prints one JSON object with what it saw on the last line of stdout; exits 0 even when a
// step fails (the `error` field says which), so that the test can show everything it saw.
import fs from 'node:fs/promises';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const config = JSON.parse(await fs.readFile(process.argv[2], 'utf8'));
const started = Date.now();
const result = {
  steps: [],
  statusLog: [],
  ghostText: null,
  fileAfterSave: null,
  readyAfterS: null,
  failedLabel: null,
  failedText: null,
  failedHover: null,
  toggled: null,
  profileSetting: null,
  notifications: [],
  allNotifications: [],
  error: null,
};

function log(message) {
  const line = `[${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`;
  result.steps.push(line);
  process.stderr.write(line + '\n');
}

async function waitFor(what, timeoutMs, probe, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// The coder-lsp status bar item (its element id ends with the item's id); its accessible
// label is the tooltip text.
const STATUS_ITEM = '.statusbar-item[id$="coderLsp.status"]';

function statusItem(page) {
  return page.evaluate((selector) => {
    const el = document.querySelector(selector);
    return el ? { label: el.getAttribute('aria-label') || '', text: (el.textContent || '').trim() } : null;
  }, STATUS_ITEM);
}

function ghostText(page) {
  return page.evaluate(() => {
    // The first line's ghost text is injected into the line; further lines live in a view
    // zone after it.
    const editor = document.querySelector('.editor-instance .monaco-editor');
    if (!editor) {
      return null;
    }
    const inline = [...editor.querySelectorAll('.ghost-text-decoration')].map((el) => el.textContent || '');
    const lines = [...editor.querySelectorAll('.ghost-text')]
      .filter((el) => !el.closest('.suggest-preview-text') && !el.parentElement?.closest('.ghost-text'))
      .map((el) => el.textContent || '');
    const text = [inline.join(''), ...lines].join('\n').replace(/\u00a0/g, ' ');
    return text.trim() ? text : null;
  });
}

function notifications(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message')].map(
      (el) => (el.textContent || '').trim(),
    ),
  );
}

// Runs a command from the Command Palette by its title.
async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input', { visible: true, timeout: 15_000 });
  await page.keyboard.type(title, { delay: 10 });
  await waitFor(`the command ${title}`, 15_000, () => quickPickHas(page, title));
  await page.keyboard.press('Enter');
}

function quickPickHas(page, text) {
  return page.evaluate(
    (t) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((row) => (row.textContent || '').includes(t)),
    text,
  );
}

async function readJson(file) {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return {};
  }
}

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

async function chord(page, key) {
  await page.keyboard.down(mod);
  await page.keyboard.press(key);
  await page.keyboard.up(mod);
}

const browser = await puppeteer.launch({
  executablePath: config.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--window-size=1400,900'],
  defaultViewport: { width: 1400, height: 900 },
  protocolTimeout: 120_000,
});
let page;
try {
  page = await browser.newPage();
  page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`));
  log(`opening ${config.url}`);
  await page.goto(config.url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
  await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 90_000 });
  log('workbench loaded');

  // Record every state the status item goes through (loading percentages are short-lived).
  // Notifications too: toasts that are not errors hide again after a while.
  await page.evaluate((selector) => {
    window.__coderLspStatus = [];
    window.__coderLspNotes = [];
    setInterval(() => {
      for (const el of document.querySelectorAll('.notification-list-item-message')) {
        const text = (el.textContent || '').trim();
        if (text && !window.__coderLspNotes.includes(text)) {
          window.__coderLspNotes.push(text);
        }
      }
      const el = document.querySelector(selector);
      if (el) {
        const entry = `${(el.textContent || '').trim()} | ${el.getAttribute('aria-label') || ''}`;
        const seen = window.__coderLspStatus;
        if (seen[seen.length - 1] !== entry) {
          seen.push(entry);
        }
      }
    }, 50);
  }, STATUS_ITEM);

  // Open the file through Quick Open.
  await page.waitForSelector('.explorer-folders-view, .explorer-viewlet', { timeout: 60_000 }).catch(() => undefined);
  await page.mouse.click(700, 450);
  await chord(page, 'p');
  await page.waitForSelector('.quick-input-widget input', { visible: true, timeout: 30_000 });
  await page.keyboard.type(config.file, { delay: 20 });
  await waitFor('the file in Quick Open', 30_000, () =>
    page.evaluate(
      (name) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((row) => (row.textContent || '').includes(name)),
      config.file,
    ),
  );
  await page.keyboard.press('Enter');
  await page.waitForSelector(`.tab[aria-label^="${config.file}"], .tab[data-resource-name="${config.file}"]`, { timeout: 30_000 });
  await page.waitForSelector('.editor-instance .monaco-editor .view-lines', { visible: true, timeout: 30_000 });
  log(`opened ${config.file}`);

  const status = await waitFor('the coder-lsp status item', 60_000, async () => {
    const item = await statusItem(page);
    if (!item) {
      const ids = await page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].map((el) => el.id));
      log(`status bar items: ${ids.join(' ')}`);
    }
    return item;
  }, 2_000);
  log(`status item: ${status.text} | ${status.label}`);
  const ready = await waitFor('the engine to be ready', config.readyTimeoutMs, async () => {
    const item = await statusItem(page);
    if (item && /failed/.test(item.label)) {
      throw new Error(`engine failed before it was ready: ${item.label}`);
    }
    return item && item.label.startsWith('coder-lsp: ready') ? item : null;
  }, 250);
  result.readyAfterS = (Date.now() - started) / 1000;
  log(`ready: ${ready.text} | ${ready.label}`);

  // Type at the end of the file and wait for ghost text.
  await page.click('.editor-instance .monaco-editor .view-lines');
  await chord(page, 'End');
  await page.keyboard.type(config.typed, { delay: 40 });
  log(`typed ${JSON.stringify(config.typed)}`);
  let ghost;
  try {
    ghost = await waitFor('ghost text', 30_000, () => ghostText(page));
  } catch {
    // Ask explicitly (editor.action.inlineSuggest.trigger, Alt+\) once more.
    log('no ghost text yet; triggering inline suggestions explicitly');
    await page.keyboard.down('Alt');
    await page.keyboard.press('Backslash');
    await page.keyboard.up('Alt');
    ghost = await waitFor('ghost text', 60_000, () => ghostText(page));
  }
  result.ghostText = ghost;
  log(`ghost text: ${JSON.stringify(ghost)}`);
  await page.screenshot({ path: path.join(config.artifacts, 'ghost-text.png') });

  await page.keyboard.press('Tab');
  await waitFor('the ghost text to be accepted', 10_000, async () => !(await ghostText(page)));
  await chord(page, 's');
  const filePath = path.join(config.workspace, config.file);
  result.fileAfterSave = await waitFor('the saved file', 20_000, async () => {
    const text = await fs.readFile(filePath, 'utf8');
    return text !== config.initialText && text.includes(config.typed.trimEnd()) ? text : null;
  });
  log(`saved: ${JSON.stringify(result.fileAfterSave)}`);

  // The commands: toggling completions and switching the profile write the user's settings.
  const userSettings = path.join(config.userDir, 'User', 'settings.json');
  await runCommand(page, 'coder-lsp: Toggle Inline Completions');
  result.toggled = await waitFor('completions off in the status bar', 15_000, async () => {
    const item = await statusItem(page);
    const saved = await readJson(userSettings);
    return item && item.label.includes('completions off') && saved['coderLsp.completion.enabled'] === false ? item : null;
  });
  log(`toggled: ${result.toggled.text} | ${result.toggled.label}`);
  await runCommand(page, 'coder-lsp: Switch Profile');
  await waitFor('the profile picker', 15_000, () => quickPickHas(page, 'cpu-small'));
  await page.keyboard.type('cpu-small', { delay: 10 });
  await page.keyboard.press('Enter');
  result.profileSetting = await waitFor('the profile setting', 15_000, async () => (await readJson(userSettings))['coderLsp.profile']);
  log(`profile setting: ${result.profileSetting}`);

  // A model that cannot load: the server restarts its engine on the settings change.
  const settingsPath = path.join(config.workspace, '.vscode', 'settings.json');
  const settings = JSON.parse(await fs.readFile(settingsPath, 'utf8'));
  settings['coderLsp.engine.model'] = config.badModel;
  await fs.writeFile(settingsPath, JSON.stringify(settings, null, 2));
  log(`set coderLsp.engine.model = ${config.badModel}`);
  const failed = await waitFor('the engine to fail', config.failTimeoutMs, async () => {
    const item = await statusItem(page);
    return item && item.label.includes('failed') ? item : null;
  }, 250);
  result.failedLabel = failed.label;
  result.failedText = failed.text;
  log(`failed: ${failed.text} | ${failed.label}`);
  result.notifications = await waitFor('the error notification', 30_000, async () => {
    const shown = await notifications(page);
    return shown.some((text) => text.includes('failed to load')) ? shown : null;
  });
  log(`notifications: ${JSON.stringify(result.notifications)}`);
  // The tooltip, as a person hovering the item sees it.
  await page.hover(STATUS_ITEM);
  result.failedHover = await waitFor('the status item hover', 15_000, () =>
    page.evaluate(() => {
      const hover = document.querySelector('.workbench-hover, .monaco-hover:not(.hidden)');
      const text = hover ? (hover.textContent || '').trim() : '';
      return text.includes('failed') ? text : null;
    }),
  );
  log(`hover: ${result.failedHover}`);
  await page.screenshot({ path: path.join(config.artifacts, 'failed.png') });
} catch (error) {
  result.error = error instanceof Error ? error.message : String(error);
  log(`error: ${result.error}`);
  if (page) {
    await page.screenshot({ path: path.join(config.artifacts, 'error.png') }).catch(() => undefined);
    result.notifications = await notifications(page).catch(() => []);
  }
} finally {
  if (page) {
    result.statusLog = await page.evaluate(() => window.__coderLspStatus || []).catch(() => []);
    result.allNotifications = await page.evaluate(() => window.__coderLspNotes || []).catch(() => []);
  }
  result.elapsedS = (Date.now() - started) / 1000;
  await browser.close().catch(() => undefined);
}
process.stdout.write(JSON.stringify(result) + '\n');
