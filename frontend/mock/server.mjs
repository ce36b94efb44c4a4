#!/usr/bin/env node
// A fake restock API for working on the UI without Python, with canned data. Not used by the
// unit tests (they fake fetch/XHR directly). tests/web/test_mock_contract.py holds every
// answer to the real server's /openapi.json and every warning to the codes the server emits:
// change the two together.
//
//   node mock/server.mjs [port]          # default 8765
//   MOCK_TOKEN=secret   require "Authorization: Bearer secret"
//   MOCK_DROP=1         drop each job's event stream once, after event 6 (tests reconnects)
//   MOCK_SPEED=ms       time between training events (default 150)
//
// Serves the plain page at /ui, /retrain.html and /static/*, and the React demo build
// (dist-demo/) at /demo/.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const STATIC = path.resolve(here, '../../src/restock/web/static');
const DEMO = path.resolve(here, '../dist-demo');
const PORT = Number(process.argv[2] || process.env.PORT || 8765);
const TOKEN = process.env.MOCK_TOKEN || '';
const DROP = process.env.MOCK_DROP === '1';
const SPEED = Number(process.env.MOCK_SPEED || 150);

let modelVersion = process.env.MOCK_NO_MODEL === '1' ? null : '20240101T000000-abc123';
const jobs = new Map();
let nextJob = 1;

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json' };

function json(res, status, body, extra = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*', ...extra });
  res.end(JSON.stringify(body));
}
function error(res, status, code, message, details = null) { json(res, status, { error: { code, message, details } }); }
function sendFile(res, file) {
  fs.readFile(file, (err, buf) => {
    if (err) return error(res, 404, 'not_found', 'No such file');
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Content-Security-Policy': "default-src 'self'; img-src 'self' blob: data:" });
    res.end(buf);
  });
}
/** A JSON request body ({} when empty); throws on anything else. */
async function readJson(req) {
  return JSON.parse((await readBody(req)).toString('utf8') || '{}');
}
function readBody(req) {
  return new Promise((resolve) => { const parts = []; req.on('data', (c) => parts.push(c)); req.on('end', () => resolve(Buffer.concat(parts))); });
}

const STAGES = ['validate', 'merge', 'backtest', 'prophet', 'lstm', 'ensemble', 'forecast', 'save', 'activate'];
function script() {
  const ev = [];
  const weights = { validate: 0.02, merge: 0.03, backtest: 0.15, prophet: 0.25, lstm: 0.35, ensemble: 0.05, forecast: 0.1, save: 0.03, activate: 0.02 };
  let p = 0;
  for (const s of STAGES) {
    if (s === 'lstm') {
      const epochs = 12;
      for (let e = 1; e <= epochs; e++) {
        const loss = 0.5 / Math.sqrt(e);
        ev.push(['progress', { stage: s, progress: +(p + weights[s] * e / epochs).toFixed(4), message: `epoch ${e}/${epochs}`, epoch: e, epochs, loss, val_loss: loss * 1.15 }]);
      }
    } else {
      ev.push(['progress', { stage: s, progress: +p.toFixed(4), message: `${s} started` }]);
      ev.push(['progress', { stage: s, progress: +(p + weights[s]).toFixed(4), message: `${s} finished` }]);
    }
    p += weights[s];
  }
  return ev;
}

/** The three selection filters, in the server's order. */
const FILTERS = ['product_id', 'store_id', 'category'];

/**
 * A request's selection, `get(filter)` giving a filter's values (a query's or a JSON body's):
 * the selection ({filter: [values]}, blanks left out), the series it chooses, and the
 * server's 404 unknown_series for its first value no series has (null when every value is
 * known).
 */
function select(get) {
  const selection = Object.fromEntries(FILTERS.map((k) => [k, get(k).filter(Boolean)]));
  const chosen = SERIES.filter((s) => FILTERS.every((k) => !selection[k].length || selection[k].includes(s[k])));
  const unknown = FILTERS.flatMap((k) => selection[k].filter((v) => !SERIES.some((s) => s[k] === v)).map((v) => [k, v]));
  const notFound = unknown.length ? [404, { error: { code: 'unknown_series', message: `unknown ${unknown[0][0]}: '${unknown[0][1]}'`, details: { column: unknown[0][0], unknown: [unknown[0][1]], suggestions: {} } } }] : null;
  return { selection, chosen, notFound };
}

// POST /simulate: the three policies replayed over made-up backtest weeks of the selection;
// a snacks-only selection has no backtest (404 no_backtest), and a lead time of 28 days or
// more is as long as the replayed period (400 invalid_parameter), as the server answers.
function simulateBody(req) {
  const { selection, chosen } = select((k) => [].concat(req[k] ?? []));
  if (!chosen.length) return [404, { error: { code: 'unknown_series', message: 'no series matches the selection', details: { filters: selection } } }];
  if (chosen.every((s) => s.category === 'snacks')) {
    return [404, { error: { code: 'no_backtest', message: 'no backtest period for the selection: the model version has no out-of-sample forecasts to replay (too short a history, or outside the range)', details: { filters: selection, start: null, end: null } } }];
  }
  const lt = req.lead_time_days ?? 7, target = req.service_level ?? 0.95, periods = 28;
  if (lt >= periods) return [400, { error: { code: 'invalid_parameter', message: `lead time ${lt} days is not shorter than the ${periods} simulated days`, details: { parameter: 'lead_time_days' } } }];
  const demand = chosen.reduce((a, s) => a + s.mean * periods, 0);
  const outcome = (csl, fill, stock, orders) => {
    const cycles = orders * chosen.length;
    return { target_service_level: target, cycle_service_level: csl, fill_rate: fill, csl_vs_target: csl - target, fill_rate_vs_target: fill - target,
      cycles, stockout_periods: Math.round((1 - csl) * cycles), periods, demand, served_from_stock: demand * fill,
      average_on_hand: stock * chosen.length, average_on_hand_value: req.unit_cost ? stock * chosen.length * req.unit_cost : null, orders: cycles };
  };
  const total = { restock: outcome(0.956, 0.991, 122.4, 4), seed: outcome(0.951, 0.987, 124.1, 4), min_max: outcome(0.86, 0.95, 98, 3) };
  return [200, { model_version: modelVersion, frequency: 'D', selection: { ...selection, series: chosen.length },
    period: { start: '2024-12-04', end: '2024-12-31', periods }, policy: { service_level: target, lead_time_days: lt },
    seed: req.seed ?? 0, unit_cost: req.unit_cost ?? null, total,
    series: chosen.map((s) => ({ unique_id: `${s.product_id}/${s.store_id}`, start: '2024-12-04', end: '2024-12-31', restock: total.restock, seed: total.seed, min_max: total.min_max })),
    skipped: [], plot_url: req.plot ? '/plots/simulation.png' : null }];
}

function startJob() {
  const id = `job-${nextJob++}`;
  const job = { id, status: 'queued', stage: null, progress: 0, events: [], listeners: new Set(), created_at: new Date().toISOString(), dropped: false, version: null };
  jobs.set(id, job);
  const steps = script();
  let i = 0;
  const emit = (event, data) => {
    const e = { id: job.events.length + 1, event, data };
    job.events.push(e);
    for (const l of job.listeners) l(e);
  };
  job.timer = setInterval(() => {
    if (job.cancel) {
      clearInterval(job.timer);
      job.status = 'cancelled';
      emit('error', { code: 'cancelled', message: 'Cancelled by request' });
      for (const l of job.listeners) l(null);
      return;
    }
    if (i < steps.length) {
      job.status = 'running';
      const [event, data] = steps[i++];
      job.stage = data.stage; job.progress = data.progress;
      emit(event, data);
    } else {
      clearInterval(job.timer);
      job.version = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15) + '-mock';
      modelVersion = job.version;
      job.status = 'succeeded';
      emit('progress', { stage: 'done', progress: 1, message: 'done' });
      emit('done', { model_version: job.version, metrics: {
        ensemble: { mase: 0.812, wape: 0.214, smape: 0.231, bias: -0.012 },
        seasonal_naive: { mase: 1.0, wape: 0.268, smape: 0.29, bias: 0.004 },
        prophet: { mase: 0.874, wape: 0.229, smape: 0.247, bias: 0.021 },
        lstm: { mase: 0.901, wape: 0.236, smape: 0.252, bias: -0.03 } } });
      for (const l of job.listeners) l(null);
    }
  }, SPEED);
  return job;
}

function jobView(job) {
  return { job_id: job.id, status: job.status, stage: job.stage, progress: job.progress, model_version: job.version, error: null, created_at: job.created_at, started_at: job.created_at, finished_at: null };
}

const SERIES = [];
for (const store of ['S1', 'S2']) for (let p = 1; p <= 6; p++) SERIES.push({ product_id: `P${p}`, store_id: store, category: p <= 3 ? 'drinks' : 'snacks', rows: 730, first_date: '2023-01-01', last_date: '2024-12-31', mean: 10 + p, zero_share: 0.02 });

// Product P2 comes in cases of 50 with a minimum order of 480 (the item settings of
// POST /items): its orders go through the server's supplier-constraint steps.
const MOQ = { P2: 480 }, MULTIPLE = { P2: 50 };

/** An order through the supplier constraints, as restock.orders.constrain: raised to the
 * moq, rounded up to the multiple; the warning codes of the steps that changed it. */
function constrain(productId, raw) {
  const moq = MOQ[productId] ?? 0, multiple = MULTIPLE[productId];
  if (!(raw > 0)) return { quantity: raw, afterMoq: raw, codes: [] };
  const afterMoq = Math.max(raw, moq);
  const quantity = multiple ? Math.ceil(afterMoq / multiple) * multiple : afterMoq;
  return { quantity, afterMoq, codes: [...(afterMoq > raw ? ['order_raised_to_moq'] : []), ...(quantity > afterMoq ? ['order_rounded_to_multiple'] : [])] };
}

/** An order's explanation in the server's steps and words (restock.orders.explanations). */
function explain({ lt, review, level, demand, safety, reorder, size, upTo, onHand, onOrder, raw, order }) {
  const f = (v) => v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const position = onHand === null ? null : onHand + onOrder;
  const stock = position === null ? '' : `inventory position ${f(position)} (on hand ${f(onHand)} + on order ${f(onOrder)})`;
  const steps = [
    { step: 'demand_over_protection_interval', quantity: demand, text: `expected demand over lead time ${lt} d + review period ${review} d: ${f(demand)}` },
    { step: 'reorder_point', quantity: reorder, text: `+ safety stock ${f(safety)} (service level ${level}) = reorder point ${f(reorder)}` },
    { step: 'order_up_to_level', quantity: upTo, text: `+ order quantity ${f(size)} (30 days of demand) = order-up-to level ${f(upTo)}` },
    position === null ? { step: 'order', quantity: null, text: 'on hand unknown: no order suggested' }
      : raw > 0 ? { step: 'order', quantity: raw, text: `- ${stock} = order ${f(raw)}` }
        : { step: 'order', quantity: 0, text: `${stock} is above the reorder point: no order` },
  ];
  if (order.codes.includes('order_raised_to_moq')) steps.push({ step: 'order_raised_to_moq', quantity: order.afterMoq, text: `raised to the minimum order quantity: ${f(order.afterMoq)}` });
  if (order.codes.includes('order_rounded_to_multiple')) steps.push({ step: 'order_rounded_to_multiple', quantity: order.quantity, text: `rounded up to whole order multiples: ${f(order.quantity)}` });
  return steps;
}

function forecastBody(req) {
  const days = req.days || 30;
  const history = [];
  const start = Date.UTC(2024, 9, 1);
  for (let d = Math.max(0, 92 - (req.history ?? 28)); d < 92; d++) {
    const t = new Date(start + d * 86400000);
    history.push({ date: t.toISOString().slice(0, 10), quantity: Math.round(20 + 6 * Math.sin(d / 7 * 2 * Math.PI) + (d % 5)) });
  }
  const forecast = [];
  for (let d = 0; d < days; d++) {
    const t = new Date(start + (92 + d) * 86400000);
    const yhat = 21 + 6 * Math.sin((92 + d) / 7 * 2 * Math.PI);
    forecast.push({ date: t.toISOString().slice(0, 10), yhat, yhat_lower: yhat - 4 - d * 0.05, yhat_upper: yhat + 4 + d * 0.05, prophet: yhat + 1, lstm: yhat - 1 });
  }
  // stock: on hand as asked (else 180) and 40 on order (the latest stored) unless asked
  const onHand = req.on_hand ?? 180, onOrder = req.on_order ?? 40, position = onHand + onOrder;
  const lt = req.lead_time_days ?? 7, review = req.review_period_days ?? 0, level = req.service_level ?? 0.95;
  const reorderPoint = 21 * (lt + review) + 22.4, upTo = reorderPoint + 300;
  const raw = position <= reorderPoint ? upTo - position : 0;
  // a supplier's constraints apply to a selection of one series only (the server's rule)
  const order = constrain(req.store_id ? req.product_id : null, raw);
  // the server's warnings, by its rules: a stockout before an order placed now arrives, the
  // inventory position under the reorder point, each constraint that changed the order; and
  // the two about the data this mock always has
  const warnings = [
    { code: 'short_history', severity: 'warning', message: 'Less than two years of history.' },
    { code: 'stale_model', severity: 'info', message: 'The model is 12 days old.' }];
  if (order.codes.includes('order_raised_to_moq')) warnings.push({ code: 'order_raised_to_moq', severity: 'info', message: `The order of ${raw.toFixed(2)} was raised to the minimum order quantity ${order.afterMoq.toFixed(2)}.` });
  if (order.codes.includes('order_rounded_to_multiple')) warnings.push({ code: 'order_rounded_to_multiple', severity: 'info', message: `The order was rounded up from ${order.afterMoq.toFixed(2)} to ${order.quantity.toFixed(2)}, a whole number of order multiples.` });
  if (onHand / 21 < lt) warnings.unshift({ code: 'stockout_before_lead_time', severity: 'critical', message: 'Projected stockout before an order placed today can arrive.' });
  if (position < reorderPoint) warnings.unshift({ code: 'below_reorder_point', severity: 'warning', message: `The inventory position ${position} is below the reorder point ${reorderPoint.toFixed(0)}; order ${order.quantity.toFixed(0)} units.` });
  return {
    model_version: modelVersion,
    selection: { product_id: req.product_id ?? null, store_id: req.store_id ?? null, category: req.category ?? null, series: 1 },
    frequency: 'daily', history, forecast,
    inventory: { safety_stock: 22.4, reorder_point: reorderPoint, min_level: reorderPoint, max_level: upTo, order_quantity: 300, on_hand: onHand,
      on_order: onOrder, inventory_position: position, days_of_cover: onHand / 21, stockout_date: '2025-01-08', order_now: raw > 0,
      suggested_order_qty: order.quantity, service_level: level, lead_time_days: lt, review_period_days: review, avg_daily_demand: 21,
      order_qty_before_constraints: raw,
      explanation: explain({ lt, review, level, demand: 21 * (lt + review), safety: 22.4, reorder: reorderPoint, size: 300, upTo, onHand, onOrder, raw, order }) },
    warnings,
    plot_url: req.plot ? '/plots/mock.png' : undefined,
  };
}

// GET /accuracy: the active model's forecasts of the 14 days after its cutoff against made-up
// actuals, summed over the selected series; a snacks-only selection has nothing scored yet
// (404 no_scores), and store S2 was under-forecast every day (forecast_bias).
function accuracyBody(query) {
  const { selection, chosen, notFound } = select((k) => query.getAll(k));
  if (notFound) return notFound;
  if (!modelVersion || chosen.every((s) => s.category === 'snacks')) {
    return [404, { error: { code: 'no_scores', message: 'no scored forecasts for this selection yet: forecasts are scored when an upload brings actual sales for dates that an active model version forecast', details: { selection, model_version: null } } }];
  }
  const under = chosen.every((s) => s.store_id === 'S2');
  const start = Date.UTC(2024, 11, 18);
  const points = Array.from({ length: 14 }, (_, d) => {
    const date = new Date(start + d * 86400000).toISOString().slice(0, 10);
    const base = chosen.length * (21 + 6 * Math.sin(d / 7 * 2 * Math.PI));
    return { date, actual: Math.round(base * (under ? 1.3 : 1) + (d % 3) - 1), forecast: +(base * (1 + 0.04 * Math.cos(d))).toFixed(2), naive: Math.round(base * 0.92 + (d % 4)) };
  });
  const sum = (k) => points.reduce((a, p) => a + p[k], 0);
  const abs = (k) => points.reduce((a, p) => a + Math.abs(p[k] - p.actual), 0);
  const scale = chosen.length * 5.5;
  const mase = abs('forecast') / points.length / scale, naiveMase = abs('naive') / points.length / scale;
  const figures = { periods: points.length, first_date: points[0].date, last_date: points[points.length - 1].date, actual: sum('actual'), forecast: sum('forecast'),
    mase, wape: abs('forecast') / sum('actual'), bias: (sum('forecast') - sum('actual')) / sum('actual'), coverage: under ? 0.61 : 0.93, fva: 1 - mase / naiveMase };
  const version = modelVersion;
  return [200, {
    selection, start: query.get('start'), end: query.get('end'),
    versions: [{ model_version: version, cutoff: '2024-12-17', frequency: 'D', first_date: figures.first_date, last_date: figures.last_date, periods: 14, series: chosen.length, backtest_mase: 0.81, live_mase: mase, points }],
    scores: [
      ...chosen.map((s) => ({ model_version: version, level: 'series', product_id: s.product_id, store_id: s.store_id, category: s.category, series: 1, ...figures })),
      { model_version: version, level: 'total', product_id: null, store_id: null, category: null, series: chosen.length, ...figures }],
    warnings: under ? [{ code: 'forecast_bias', severity: 'warning', message: `model ${version}'s forecast was below the actual sales in every one of 14 periods`, model_version: version }] : [],
  }];
}

// GET /plan: one row per selected series, most urgent first (order now, then the earliest
// stockout); product P6 has no stored stock (order_now null). JSON, or CSV with the server's
// header (format=csv or Accept: text/csv).
const PLAN_COLUMNS = ['product_id', 'store_id', 'category', 'order_now', 'suggested_order_qty', 'on_hand', 'on_order', 'inventory_position', 'avg_daily_demand', 'protection_interval_days', 'demand_over_protection_interval', 'safety_stock', 'safety_stock_method', 'reorder_point', 'order_up_to_level', 'days_of_cover', 'stockout_date', 'abc_class', 'xyz_class', 'demand_cv', 'warnings', 'order_qty_before_constraints', 'lead_time_days', 'service_level', 'explanation'];
function planBody(query) {
  const { chosen, notFound } = select((k) => query.getAll(k));
  if (notFound) return notFound;
  const lt = Number(query.get('lead_time_days') || 7), review = Number(query.get('review_period_days') || 0);
  if (!(lt > 0)) return [422, { error: { code: 'invalid_request', message: 'lead_time_days: must be greater than 0', details: { problems: [{ loc: ['lead_time_days'], msg: 'must be greater than 0', type: 'greater_than' }] } } }];
  const level = Number(query.get('service_level') || 0.95);
  const rows = chosen.map((s, i) => {
    const demand = s.mean, known = s.product_id !== 'P6';
    const onHand = known ? [30, 400, 90, 150, 60][i % 5] : null, onOrder = known ? [0, 0, 25, 0, 10][i % 5] : 0;
    const position = known ? onHand + onOrder : null;
    const safety = +(1.65 * 3 * Math.sqrt(lt + review)).toFixed(6), reorder = +(demand * (lt + review) + safety).toFixed(6);
    const upTo = +(reorder + 30 * demand).toFixed(6), cover = known ? +(onHand / demand).toFixed(6) : null;
    const orderNow = known ? position <= reorder : null;
    const raw = known ? (orderNow ? +(upTo - position).toFixed(6) : 0) : null;
    const order = constrain(s.product_id, raw);
    const warnings = ['short_history', ...(known && cover < lt ? ['stockout_before_lead_time'] : []), ...(known && position < reorder ? ['below_reorder_point'] : []), ...order.codes];
    return { product_id: s.product_id, store_id: s.store_id, category: s.category, order_now: orderNow,
      suggested_order_qty: order.quantity, on_hand: onHand, on_order: onOrder, inventory_position: position,
      avg_daily_demand: demand, protection_interval_days: lt + review, demand_over_protection_interval: demand * (lt + review),
      safety_stock: safety, safety_stock_method: 'normal', reorder_point: reorder, order_up_to_level: upTo, days_of_cover: cover,
      stockout_date: known ? new Date(Date.UTC(2025, 0, 1) + Math.floor(cover) * 86400000).toISOString().slice(0, 10) : null,
      abc_class: i < 6 ? 'A' : 'B', xyz_class: 'X', demand_cv: 0.3, warnings,
      order_qty_before_constraints: raw, lead_time_days: lt, service_level: level,
      explanation: explain({ lt, review, level, demand: demand * (lt + review), safety, reorder, size: 30 * demand, upTo, onHand, onOrder, raw, order }) };
  });
  const rank = (r) => (r.order_now === true ? 0 : 1);
  rows.sort((a, b) => rank(a) - rank(b) || (a.days_of_cover ?? Infinity) - (b.days_of_cover ?? Infinity) || a.product_id.localeCompare(b.product_id) || a.store_id.localeCompare(b.store_id));
  return [200, { model_version: modelVersion, frequency: 'D', start: '2025-01-01', series: rows.length, abc_basis: 'volume',
    policy: { service_level: Number(query.get('service_level') || 0.95), lead_time_days: lt, review_period_days: review },
    notes: { inventory_position: 'on hand + on order' }, rows }];
}
function planCsv(rows) {
  const quote = (t) => (/[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
  const cell = (k, v) => (v === null ? '' : v === true ? 'yes' : v === false ? 'no' : k === 'explanation' ? quote(v.map((s) => s.text).join('; ')) : Array.isArray(v) ? v.join(';') : String(v));
  return [PLAN_COLUMNS.join(','), ...rows.map((r) => PLAN_COLUMNS.map((k) => cell(k, r[k])).join(','))].join('\n') + '\n';
}

// 1x1 PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  const p = url.pathname;
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': 'Authorization, Content-Type, Last-Event-ID', 'Access-Control-Allow-Methods': 'GET, POST, DELETE' });
    return res.end();
  }
  if (req.method === 'GET' && (p === '/ui' || p === '/retrain.html')) return sendFile(res, path.join(STATIC, 'retrain.html'));
  if (req.method === 'GET' && p.startsWith('/static/')) return sendFile(res, path.join(STATIC, path.basename(p)));
  if (req.method === 'GET' && (p === '/demo' || p.startsWith('/demo/'))) {
    const rel = p.replace(/^\/demo\/?/, '') || 'index.html';
    return sendFile(res, path.join(DEMO, path.normalize(rel).replace(/^(\.\.[/\\])+/, '')));
  }
  if (TOKEN && req.headers.authorization !== `Bearer ${TOKEN}`) return error(res, 401, 'unauthorized', 'Missing or invalid bearer token');

  if (req.method === 'GET' && p === '/') return json(res, 200, { status: 'ok', model_version: modelVersion, trained_at: modelVersion ? '2024-12-31T12:00:00Z' : null, rows: 8760, series: SERIES.length, queue: { kind: 'thread', queued: 0, running: [...jobs.values()].filter((j) => j.status === 'running').length } });
  if (req.method === 'POST' && p === '/retrain') {
    const body = (await readBody(req)).toString('utf8');
    const fname = /filename="([^"]*)"/.exec(body)?.[1] || '';
    if (!/\.(csv|txt)$/i.test(fname)) return error(res, 415, 'unsupported_media_type', `Expected a CSV file, got "${fname}"`);
    if (/bad/i.test(fname)) {
      const problems = Array.from({ length: 5 }, (_, i) => ({ row: i + 2, column: i % 2 ? 'quantity' : 'date', problem: i % 2 ? 'must be a number >= 0' : 'not a date: "2024-13-01"' }));
      return error(res, 422, 'invalid_data', 'The file has 137 invalid rows; nothing was stored.', { problems, total: 137 });
    }
    const job = startJob();
    return json(res, 202, { job_id: job.id, status: 'queued', status_url: `/jobs/${job.id}`, events_url: `/jobs/${job.id}/events`, upload: { upload_id: `upload-${job.id}`, rows_read: 8760, inserted: 8000, updated: 760, skipped: 0, skipped_problems: [], ignored_columns: [] } });
  }
  let m;
  if ((m = /^\/jobs\/([^/]+)\/events$/.exec(p)) && req.method === 'GET') {
    const job = jobs.get(m[1]);
    if (!job) return error(res, 404, 'job_not_found', 'No such job');
    const after = Number(req.headers['last-event-id'] || 0);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'Access-Control-Allow-Origin': '*' });
    res.write('retry: 500\n\n');
    const send = (e) => {
      if (!e) { res.end(); return; }
      res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (DROP && !job.dropped && e.id === 6) { job.dropped = true; job.listeners.delete(send); res.destroy(); }
    };
    for (const e of job.events) if (e.id > after) send(e);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return res.end();
    job.listeners.add(send);
    const hb = setInterval(() => res.write(': heartbeat\n\n'), 15000);
    req.on('close', () => { clearInterval(hb); job.listeners.delete(send); });
    return;
  }
  if ((m = /^\/jobs\/([^/]+)$/.exec(p))) {
    const job = jobs.get(m[1]);
    if (!job) return error(res, 404, 'job_not_found', 'No such job');
    if (req.method === 'GET') return json(res, 200, jobView(job));
    if (req.method === 'DELETE') {
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return error(res, 409, 'job_finished', `Job already ${job.status}`);
      job.cancel = true;
      return json(res, 202, { ...jobView(job), status: 'running' });
    }
  }
  if (req.method === 'GET' && p === '/series') {
    const q = url.searchParams.get('q') || '';
    const limit = Number(url.searchParams.get('limit') || 100), offset = Number(url.searchParams.get('offset') || 0);
    const items = SERIES.filter((s) => !q || s.product_id.includes(q));
    return json(res, 200, { items: items.slice(offset, offset + limit), total: items.length, limit, offset });
  }
  if (req.method === 'POST' && p === '/forecast') {
    if (!modelVersion) return error(res, 409, 'no_model', 'No model has been trained yet');
    let body;
    try { body = await readJson(req); } catch { return error(res, 400, 'bad_json', 'Body is not JSON'); }
    if (body.product_id === 'P6' && body.store_id === 'S2') return error(res, 404, 'unknown_series', 'No series matches product P6 at store S2');
    return json(res, 200, forecastBody(body));
  }
  if (req.method === 'POST' && p === '/simulate') {
    if (!modelVersion) return error(res, 409, 'no_model', 'No model has been trained yet');
    let body;
    try { body = await readJson(req); } catch { return error(res, 400, 'bad_json', 'Body is not JSON'); }
    return json(res, ...simulateBody(body));
  }
  if (req.method === 'GET' && p === '/plan') {
    if (!modelVersion) return error(res, 409, 'no_model', 'No model has been trained yet');
    const [status, body] = planBody(url.searchParams);
    const csv = url.searchParams.get('format') === 'csv' || (!url.searchParams.get('format') && /text\/csv/.test(req.headers.accept || ''));
    if (status !== 200 || !csv) return json(res, status, body);
    res.writeHead(200, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': 'attachment; filename="plan.csv"', 'Access-Control-Allow-Origin': '*' });
    return res.end(planCsv(body.rows));
  }
  if (req.method === 'GET' && p === '/accuracy') return json(res, ...accuracyBody(url.searchParams));
  if (req.method === 'GET' && p.startsWith('/plots/')) { res.writeHead(200, { 'Content-Type': 'image/png' }); return res.end(PNG); }
  return error(res, 404, 'not_found', `No route for ${req.method} ${p}`);
});

server.listen(PORT, '127.0.0.1', () => console.log(`mock restock API on http://127.0.0.1:${PORT}/ui  (demo: /demo/)`));
