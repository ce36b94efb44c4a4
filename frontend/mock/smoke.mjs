#!/usr/bin/env node
// Drive a page against the mock API in Debian's chromium (playwright-core, no browser
// download) and save screenshots. Dev aid, not part of `npm test`.
//   node mock/server.mjs 8765 &   then   node mock/smoke.mjs http://127.0.0.1:8765/ui [outdir]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const url = process.argv[2] || 'http://127.0.0.1:8765/ui';
const out = process.argv[3] || '/tmp/restock-shots';
const width = Number(process.env.WIDTH || 1200);
fs.mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width, height: 900 } });
const logs = [];
page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
const shot = (name) => page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });

await page.goto(url);
await page.getByTestId('server-status').filter({ hasText: 'Server' }).waitFor();
await shot('01-initial');

// bad file -> validation table
const bad = path.join(os.tmpdir(), 'bad.csv');
fs.writeFileSync(bad, 'date,product_id,quantity\n2024-13-01,P1,x\n');
await page.getByTestId('file-input').setInputFiles(bad);
await page.getByTestId('upload-button').click();
await page.getByTestId('error-table').waitFor();
await shot('02-validation-error');

// good file -> training -> done
const good = path.join(os.tmpdir(), 'sales.csv');
fs.writeFileSync(good, 'date,product_id,quantity\n2024-01-01,P1,3\n');
await page.getByTestId('file-input').setInputFiles(good);
await page.getByTestId('upload-button').click();
await page.locator('[data-testid="stage-lstm"][data-state="current"]').waitFor({ timeout: 20000 });
await shot('03-training');
await page.getByTestId('model-version').filter({ hasText: /\S/ }).waitFor({ timeout: 30000 });
await shot('04-done');

await page.getByTestId('fc-product').selectOption('P2');
await page.getByTestId('forecast-submit').click();
await page.getByTestId('forecast-chart').locator('path').first().waitFor();
await page.getByTestId('forecast-chart').scrollIntoViewIfNeeded();
const box = await page.getByTestId('forecast-chart').boundingBox();
await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
await page.getByTestId('chart-tooltip').waitFor();
console.log('tooltip:', await page.getByTestId('chart-tooltip').innerText());
await shot('05-forecast');
await page.getByTestId('forecast-chart').screenshot({ path: path.join(out, '06-chart.png') });

// cancel flow
await page.getByTestId('file-input').setInputFiles(good);
await page.getByTestId('upload-button').click();
await page.locator('[data-testid="stage-backtest"][data-state="current"]').waitFor({ timeout: 20000 });
await page.getByTestId('cancel-button').click();
await page.getByTestId('job-status').filter({ hasText: 'cancelled' }).waitFor({ timeout: 10000 });
await shot('07-cancelled');

const log = await page.getByTestId('event-log').locator('li').allTextContents();
const ids = await page.getByTestId('event-log').locator('li').evaluateAll((ls) => ls.map((l) => l.dataset.eventId).filter(Boolean));
console.log('events', log.length, 'unique ids', new Set(ids).size, 'ids', ids.join(','));
console.log(logs.join('\n'));
await browser.close();
