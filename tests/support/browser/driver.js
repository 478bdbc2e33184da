#!/usr/bin/env node
// Drives a real headless Chromium (Debian's, through playwright-core) against a JupyterLab server.
//
// Input: a JSON plan, as the first argument or on stdin:
//   {
//     "base_url": "http://127.0.0.1:PORT",   // JupyterLab
//     "token": "...",
//     "screenshot_dir": "/abs/dir",          // screenshots go here (also one on failure)
//     "pid_file": "/abs/file",               // optional: the browser's pids are written here
//     "timeout_ms": 30000,                   // default bound of every wait
//     "total_timeout_ms": 240000,            // bound of the whole run
//     "viewport": {"width": 1400, "height": 1000},
//     "accept_kernel_dialog": true,          // a "Select Kernel" dialog is answered with its default
//                                            // (the notebook's kernelspec) and noted in "dialogs"
//     "steps": [ {"op": ..., "name": ..., ...}, ... ]
//   }
// Steps (every wait is bounded by the step's "timeout_ms", else the plan's):
//   open             {path}                      open /lab/tree/<path>?reset and wait for its cells
//   wait_kernel_idle {settle_ms=1000}            the notebook's kernel is up and idle (for settle_ms)
//   run_cells        {until_tag | index | until_index, wait_last=true, cell_timeout_ms, fail_on_error=true}
//                    run code cells from the top one by one (each waits for the one before to finish)
//                    up to and including the first cell tagged until_tag (or until_index), or run
//                    only cell `index`; with wait_last=false the last cell is only seen to start.
//   wait             {selector, min_count=1}     CSS selector matches at least min_count elements
//   wait_gone        {selector}                  CSS selector matches nothing
//   click            {selector}                  click the first (visible) match
//   drag             {selector, from: [fx, fy], to: [tx, ty]}  press the mouse at a point of the first
//                                                match (fractions of its box), move, release (a brush)
//   text             {selector, all=false}       innerText of the first match (or of all matches)
//   count            {selector}                  number of matches now
//   screenshot       {file?, full_page=false, scroll_to?}  PNG into screenshot_dir, after scrolling the
//                                                first match of CSS selector scroll_to into view
//   sleep            {ms}
//   eval             {expr}                      evaluate a JS expression in the page (a Promise is awaited);
//                                                its JSON-able value is recorded as "value"
//   wait_eval        {expr}                      evaluate expr every 100 ms until it is truthy; records "value"
//   box              {selector}                  bounding box of the first match: {x, y, width, height}
// Output: one JSON line on stdout: {ok, error?, failed_step?, total_ms, steps: [...], named: {...},
// screenshots: [...], dialogs: [...], page_errors: [...], console_errors: [...]}; each step record has start_ms/end_ms (since the run began)
// and elapsed_ms plus what it found (count, text, path, cells run). Exit code 0 when every step
// passed, 1 when one failed (a wait timed out: the message says which selector and how many were seen).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];
const CELLS = '.jp-NotebookPanel .jp-Notebook .jp-Cell';
const KERNEL_DIALOG = '.jp-Dialog:has-text("Select Kernel")';

class StepError extends Error {}

function readPlan() {
  const raw = process.argv[2] !== undefined ? process.argv[2] : fs.readFileSync(0, 'utf8');
  return JSON.parse(raw);
}

function childPids(pid) {
  // Live processes below pid, read from /proc: what this run must leave behind is nothing.
  const table = {};
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table[name] = { ppid: Number(f[1]), pgid: Number(f[2]), start: Number(f[19]) };
    } catch (e) { /* gone meanwhile */ }
  }
  const out = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    for (const [c, st] of Object.entries(table)) {
      if (st.ppid === p) { out.push({ pid: Number(c), pgid: st.pgid, start: st.start }); stack.push(Number(c)); }
    }
  }
  return out;
}

async function main() {
  const plan = readPlan();
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const defaultTimeout = plan.timeout_ms || 30000;
  const shotDir = plan.screenshot_dir || process.cwd();
  const result = { ok: false, steps: [], named: {}, screenshots: [], dialogs: [], page_errors: [], console_errors: [] };
  const base = (plan.base_url || '').replace(/\/$/, '');
  const token = plan.token || '';
  let notebookPath = null;
  let context = null;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadgetbook-chromium-'));

  let closing = null;
  const closeBrowser = () => {
    if (!closing) {
      closing = (async () => {
        if (context) await context.close().catch(() => {});
        fs.rmSync(userDataDir, { recursive: true, force: true });
      })();
    }
    return closing;
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => {
      const t = setTimeout(() => process.exit(2), 5000);
      closeBrowser().finally(() => { clearTimeout(t); process.exit(2); });
    });
  }
  let overall = null;
  const overallLimit = new Promise((_, reject) => {
    const ms = plan.total_timeout_ms || 240000;
    overall = setTimeout(() => reject(new StepError(`whole run exceeded ${ms} ms`)), ms);
  });

  let page = null;
  const run = async () => {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: plan.viewport || { width: 1400, height: 1000 },
      timeout: defaultTimeout,
    });
    if (plan.pid_file) fs.writeFileSync(plan.pid_file, JSON.stringify(childPids(process.pid)));
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(defaultTimeout);
    // Uncaught exceptions in the page, and what the page itself logs as an error.
    page.on('pageerror', (e) => result.page_errors.push(String(e).slice(0, 500)));
    page.on('console', (m) => {
      if (m.type() === 'error') result.console_errors.push(m.text().slice(0, 500));
    });
    if (plan.accept_kernel_dialog !== false) {
      // JupyterLab sometimes asks which kernel to start even though the notebook names one (a race
      // with loading the kernelspecs, seen on a busy machine); a person would press Select.
      await page.addLocatorHandler(page.locator(KERNEL_DIALOG), acceptKernelDialog);
    }
    result.launch_ms = now();

    for (let i = 0; i < (plan.steps || []).length; i++) {
      const step = plan.steps[i];
      const rec = { op: step.op, name: step.name || `${i}:${step.op}`, start_ms: now() };
      result.current = i;
      await doStep(step, rec, step.timeout_ms || defaultTimeout);
      rec.end_ms = now();
      rec.elapsed_ms = rec.end_ms - rec.start_ms;
      result.steps.push(rec);
      result.named[rec.name] = rec;
    }
    delete result.current;
    result.ok = true;
  };

  async function acceptKernelDialog() {
    const dlg = page.locator(KERNEL_DIALOG).first();
    const text = (await dlg.innerText({ timeout: 5000 }).catch(() => '')).replace(/\s+/g, ' ').slice(0, 300);
    try {
      await dlg.locator('.jp-mod-accept').click({ timeout: 5000 });
    } catch (e) {
      if (await page.$(KERNEL_DIALOG)) throw e;
      return; // answered meanwhile
    }
    result.dialogs.push({ at_ms: now(), accepted: text });
  }

  async function dialogText() {
    const d = await page.$('.jp-Dialog');
    return d ? (await d.innerText()).replace(/\s+/g, ' ').slice(0, 300) : null;
  }

  async function waitCount(selector, minCount, timeout) {
    try {
      await page.waitForFunction(
        ([s, n]) => document.querySelectorAll(s).length >= n, [selector, minCount], { timeout, polling: 50 },
      );
    } catch (e) {
      if (!(e && e.name === 'TimeoutError')) throw e;
      const seen = await page.evaluate((s) => document.querySelectorAll(s).length, selector).catch(() => '?');
      const dlg = await dialogText().catch(() => null);
      throw new StepError(`timed out after ${timeout} ms waiting for ${minCount} x '${selector}' (saw ${seen})`
        + (dlg ? `; a dialog is open: ${dlg}` : ''));
    }
    return page.evaluate((s) => document.querySelectorAll(s).length, selector);
  }

  async function notebookModel() {
    const url = `${base}/api/contents/${notebookPath.split('/').map(encodeURIComponent).join('/')}?content=1&token=${token}`;
    const resp = await page.request.get(url);
    if (!resp.ok()) throw new StepError(`GET contents of ${notebookPath}: HTTP ${resp.status()}`);
    return (await resp.json()).content;
  }

  async function runCell(index, waitDone, cellTimeout, failOnError) {
    // Watch the cell's prompt: it shows [*] once the run is queued, then [N] when it is done.
    await page.evaluate(([sel, i]) => {
      const cell = document.querySelectorAll(sel)[i];
      const rec = { star: false, done: false, last: '' };
      window.__gbCells = window.__gbCells || {};
      if (window.__gbCells[i]) window.__gbCells[i].mo.disconnect();
      const check = () => {
        const p = cell.querySelector('.jp-InputArea-prompt');
        const t = p ? p.textContent : '';
        rec.last = t;
        if (t.includes('*')) rec.star = true;
        else if (rec.star && /\[\d+\]/.test(t)) rec.done = true;
      };
      rec.mo = new MutationObserver(check);
      rec.mo.observe(cell, { childList: true, characterData: true, subtree: true });
      window.__gbCells[i] = rec;
    }, [CELLS, index]);
    const cell = page.locator(CELLS).nth(index);
    const state = (k, ms) => page.waitForFunction(([i, key]) => window.__gbCells[i][key], [index, k],
      { timeout: ms, polling: 50 });
    // Select the cell (command mode) and run it with Ctrl+Enter, as a person would. A key press that
    // lands before the notebook has settled is lost: then the prompt never shows [*], which is safe to
    // retry (a run that was requested shows [*] at once, before the kernel even answers).
    let started = false;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      await cell.scrollIntoViewIfNeeded();
      try {
        await cell.locator('.jp-InputArea-prompt').click({ timeout: 10000 });
      } catch (e) {
        const dlg = await dialogText().catch(() => null);
        throw new StepError(`could not select cell ${index}: ${String(e.message).split('\n')[0]}`
          + (dlg ? `; a dialog is open: ${dlg}` : ''));
      }
      await page.keyboard.press('Control+Enter');
      started = await state('star', 5000).then(() => true, () => false);
    }
    if (!started) throw new StepError(`cell ${index} did not start after 3 tries (Ctrl+Enter)`);
    if (!waitDone) return;
    try {
      await state('done', cellTimeout);
    } catch (e) {
      const last = await page.evaluate((i) => window.__gbCells[i].last, index).catch(() => '?');
      throw new StepError(`cell ${index} did not finish within ${cellTimeout} ms (prompt ${last})`);
    }
    if (failOnError) {
      const tb = await cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        .allInnerTexts();
      const err = tb.find((t) => t.includes('Traceback (most recent call last)'));
      if (err) throw new StepError(`cell ${index} raised:\n${err.slice(-1500)}`);
    }
  }

  async function doStep(step, rec, timeout) {
    switch (step.op) {
      case 'open': {
        notebookPath = step.path;
        const url = `${base}/lab/tree/${notebookPath.split('/').map(encodeURIComponent).join('/')}?reset&token=${token}`;
        await page.goto(url, { timeout });
        const cells = (await notebookModel()).cells;
        rec.cells = cells.length;
        await waitCount(CELLS, cells.length, timeout);
        return;
      }
      case 'wait_kernel_idle': {
        // Idle, with no dialog, for settle_ms in a row: a kernel dialog that comes late shows up here.
        const sel = '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]';
        const settle = step.settle_ms !== undefined ? step.settle_ms : 1000;
        const deadline = Date.now() + timeout;
        let idleSince = null;
        while (Date.now() < deadline) {
          if ((await page.$(sel)) && !(await page.$('.jp-Dialog'))) {
            if (idleSince === null) idleSince = Date.now();
            if (Date.now() - idleSince >= settle) return;
            await page.waitForTimeout(50);
            continue;
          }
          idleSince = null;
          const dlg = await dialogText();
          if (dlg && plan.accept_kernel_dialog !== false && (await page.$(KERNEL_DIALOG))) {
            await acceptKernelDialog();
            continue;
          }
          if (dlg) throw new StepError(`dialog open while waiting for the kernel: ${dlg}`);
          await page.waitForTimeout(100);
        }
        const status = await page.getAttribute('.jp-Notebook-ExecutionIndicator', 'data-status').catch(() => '?');
        throw new StepError(`kernel not idle within ${timeout} ms (status ${status})`);
      }
      case 'run_cells': {
        if (!notebookPath) throw new StepError('run_cells before open');
        const cells = (await notebookModel()).cells;
        let first = 0;
        let last;
        if (step.index !== undefined) {
          first = last = step.index;
        } else if (step.until_index !== undefined) {
          last = step.until_index;
        } else if (step.until_tag !== undefined) {
          last = cells.findIndex((c) => ((c.metadata || {}).tags || []).includes(step.until_tag));
          if (last < 0) throw new StepError(`no cell tagged '${step.until_tag}' in ${notebookPath}`);
        } else {
          last = cells.length - 1;
        }
        if (last >= cells.length) throw new StepError(`cell ${last} out of range (${cells.length} cells)`);
        const waitLast = step.wait_last !== false;
        const cellTimeout = step.cell_timeout_ms || timeout;
        rec.ran = [];
        for (let i = first; i <= last; i++) {
          if (cells[i].cell_type !== 'code') continue;
          const t = now();
          await runCell(i, i < last || waitLast, cellTimeout, step.fail_on_error !== false);
          rec.ran.push({ index: i, start_ms: t, ms: now() - t });
        }
        rec.last_index = last;
        return;
      }
      case 'wait':
        rec.selector = step.selector;
        rec.count = await waitCount(step.selector, step.min_count || 1, timeout);
        return;
      case 'wait_gone':
        rec.selector = step.selector;
        try {
          await page.waitForFunction((s) => document.querySelectorAll(s).length === 0, step.selector,
            { timeout, polling: 50 });
        } catch (e) {
          throw new StepError(`timed out after ${timeout} ms waiting for '${step.selector}' to go`);
        }
        return;
      case 'click':
        rec.selector = step.selector;
        try {
          await page.locator(step.selector).first().click({ timeout });
        } catch (e) {
          throw new StepError(`could not click '${step.selector}' within ${timeout} ms: ${String(e.message).split('\n')[0]}`);
        }
        return;
      case 'fill':
        rec.selector = step.selector;
        try {
          await page.locator(step.selector).first().fill(step.value, { timeout });
        } catch (e) {
          throw new StepError(`could not fill '${step.selector}' within ${timeout} ms: ${String(e.message).split('\n')[0]}`);
        }
        return;
      case 'drag': {
        rec.selector = step.selector;
        const loc = page.locator(step.selector).first();
        await loc.scrollIntoViewIfNeeded({ timeout });
        const box = await loc.boundingBox({ timeout });
        if (!box) throw new StepError(`'${step.selector}' has no box to drag on`);
        const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
        await page.mouse.move(...at(step.from));
        await page.mouse.down();
        await page.mouse.move(...at(step.to), { steps: 8 });
        await page.mouse.up();
        return;
      }
      case 'text': {
        rec.selector = step.selector;
        await waitCount(step.selector, 1, timeout);
        const loc = page.locator(step.selector);
        rec.text = step.all ? await loc.allInnerTexts() : await loc.first().innerText({ timeout });
        return;
      }
      case 'count':
        rec.selector = step.selector;
        rec.count = await page.evaluate((s) => document.querySelectorAll(s).length, step.selector);
        return;
      case 'screenshot': {
        fs.mkdirSync(shotDir, { recursive: true });
        rec.path = path.resolve(shotDir, step.file || `${rec.name.replace(/[^\w.-]+/g, '_')}.png`);
        if (step.scroll_to) await page.locator(step.scroll_to).first().scrollIntoViewIfNeeded({ timeout });
        await page.screenshot({ path: rec.path, fullPage: !!step.full_page, timeout });
        result.screenshots.push(rec.path);
        return;
      }
      case 'sleep':
        await page.waitForTimeout(step.ms || 0);
        return;
      case 'eval':
        rec.value = await page.evaluate(async (expr) => await (0, eval)(expr), step.expr);
        return;
      case 'wait_eval': {
        const deadline = Date.now() + timeout;
        for (;;) {
          rec.value = await page.evaluate(async (expr) => {
            try { return await (0, eval)(expr); } catch (e) { return null; }
          }, step.expr);
          if (rec.value) return;
          if (Date.now() > deadline) throw new StepError(`timed out after ${timeout} ms waiting for ${step.expr}`);
          await page.waitForTimeout(100);
        }
      }
      case 'box': {
        rec.selector = step.selector;
        await waitCount(step.selector, 1, timeout);
        rec.value = await page.locator(step.selector).first().boundingBox({ timeout });
        return;
      }
      default:
        throw new StepError(`unknown step op '${step.op}'`);
    }
  }

  let code = 0;
  try {
    await Promise.race([run(), overallLimit]);
  } catch (e) {
    code = 1;
    result.ok = false;
    result.error = e instanceof StepError ? e.message : String((e && e.stack) || e);
    if (result.current !== undefined) {
      result.failed_step = result.current;
      result.error = `step ${result.current} (${plan.steps[result.current].op}): ${result.error}`;
    }
    if (page && plan.screenshot_dir) {
      try {
        fs.mkdirSync(shotDir, { recursive: true });
        const p = path.resolve(shotDir, 'failure.png');
        await page.screenshot({ path: p, timeout: 10000 });
        result.screenshots.push(p);
      } catch (e2) { /* the page may be gone */ }
    }
  } finally {
    clearTimeout(overall);
    const t = setTimeout(() => { process.stderr.write('driver: browser did not close in 20 s\n'); process.exit(3); }, 20000);
    await closeBrowser();
    clearTimeout(t);
  }
  result.total_ms = now();
  process.stdout.write(JSON.stringify(result) + '\n');
  if (!result.ok) process.stderr.write(`driver: ${result.error}\n`);
  return code;
}

main().then((code) => process.exit(code), (e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String((e && e.stack) || e) }) + '\n');
  process.exit(1);
});
