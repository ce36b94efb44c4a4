// The one restock browser client, shared by the plain page (retrain.html imports it as an ES
// module from /static/client.js, no build step) and the React component (frontend/src/api.js
// re-exports it; vite bundles it). JSON calls, the CSV upload (XMLHttpRequest, for upload
// progress), the job event stream (fetch + ReadableStream, so the bearer token and
// Last-Event-ID can be sent; EventSource can send neither), the one error shape, and the
// forecast form's fields and bounds as the server declares them in /openapi.json.
// Plain ES2020 without JSX or imports: browsers load it as it is.

export const STAGES = ['validate', 'merge', 'backtest', 'prophet', 'lstm', 'ensemble', 'forecast', 'save', 'activate', 'done'];
export const STAGE_LABELS = {
  validate: 'Validate', merge: 'Merge', backtest: 'Backtest', prophet: 'Prophet', lstm: 'LSTM',
  ensemble: 'Ensemble', forecast: 'Forecast', save: 'Save', activate: 'Activate', done: 'Done',
};
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export class ApiError extends Error {
  constructor(status, code, message, details = null, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

const DEFAULT_MESSAGES = {
  400: 'The server rejected the request as malformed.',
  401: 'The server needs an access token, or refused the one given.',
  403: 'This token is not allowed to do that.',
  404: 'Not found on the server.',
  405: 'The server does not allow this method here.',
  409: 'Conflict: the server is busy with another operation, or the job already finished.',
  413: 'The file is larger than the server accepts.',
  415: 'The server accepts CSV files only.',
  422: 'The data was rejected; nothing was stored.',
  429: 'Too many requests: the server is rate limiting.',
  500: 'The server failed with an internal error.',
  502: 'Bad gateway: the API server behind the proxy did not answer.',
  503: 'The server is unavailable right now.',
  504: 'The server timed out.',
};
const CODE_NAMES = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  409: 'conflict', 413: 'payload_too_large', 415: 'unsupported_media_type', 422: 'invalid_data', 429: 'rate_limited',
};

/** Build an ApiError from a non-2xx response body (the `{"error": {...}}` shape, or anything else). */
export function errorFromResponse(status, statusText, text, retryAfter = null) {
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  const e = body && body.error && typeof body.error === 'object' ? body.error : null;
  const code = e?.code || CODE_NAMES[status] || (status >= 500 ? 'server_error' : `http_${status}`);
  let message = e?.message || (typeof body?.error === 'string' ? body.error : null) ||
    DEFAULT_MESSAGES[status] || `The server answered ${status} ${statusText || ''}.`;
  if (!e && text && !body) {
    const snippet = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
    if (snippet) message += ` (response: "${snippet}")`;
  }
  if (status === 429 && retryAfter) message += ` Try again in ${retryAfter} s.`;
  return new ApiError(status, code, message, e?.details ?? null, retryAfter);
}

function parseBody(status, statusText, text, retryAfter) {
  if (status >= 200 && status < 300) {
    if (!text) return null;
    try { return JSON.parse(text); } catch {
      throw new ApiError(status, 'bad_response', `The server answered ${status} but the body is not JSON.`);
    }
  }
  throw errorFromResponse(status, statusText, text, retryAfter);
}

/** End a server message as a sentence, so a hint can follow it. */
export function sentence(text) {
  const t = String(text ?? '').trim();
  return !t || /[.!?:)]$/.test(t) ? t : `${t}.`;
}

/** The total of epochs of an LSTM event: its `epochs`, else the "epoch 3/20" of its message. */
export function totalEpochs(data) {
  if (data?.epochs) return data.epochs;
  const m = /epoch\s+\d+\s*\/\s*(\d+)/i.exec(data?.message || '');
  return m ? Number(m[1]) : null;
}

/** One line for humans: "HTTP 413 · payload_too_large: The file is larger ...". */
export function describeError(err) {
  if (!err) return 'Unknown error.';
  if (err instanceof ApiError) {
    const prefix = err.status ? `HTTP ${err.status} · ${err.code}: ` : err.code ? `${err.code}: ` : '';
    return prefix + sentence(err.message);
  }
  return `${err.name || 'Error'}: ${err.message || String(err)}`;
}

/** Incremental text/event-stream parser following the WHATWG rules. */
export class SSEParser {
  constructor(onEvent, { onComment = () => {}, onRetry = () => {} } = {}) {
    this.buf = '';
    this.dataLines = [];
    this.type = '';
    this.idBuffer = null;
    this.lastEventId = null; // committed only when an event is dispatched
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.onRetry = onRetry;
  }

  push(chunk) {
    this.buf += chunk;
    for (;;) {
      const m = /[\r\n]/.exec(this.buf);
      if (!m) return;
      const i = m.index;
      let skip = 1;
      if (this.buf[i] === '\r') {
        if (i + 1 >= this.buf.length) return; // maybe half of a CRLF: wait for more
        if (this.buf[i + 1] === '\n') skip = 2;
      }
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + skip);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') { this.dispatch(); return; }
    if (line[0] === ':') { this.onComment(line.slice(1)); return; }
    const idx = line.indexOf(':');
    const field = idx < 0 ? line : line.slice(0, idx);
    let value = idx < 0 ? '' : line.slice(idx + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.dataLines.push(value);
    else if (field === 'id') { if (!value.includes('\u0000')) this.idBuffer = value; }
    else if (field === 'retry') { if (/^\d+$/.test(value)) this.onRetry(parseInt(value, 10)); }
  }

  dispatch() {
    this.lastEventId = this.idBuffer;
    if (!this.dataLines.length) { this.type = ''; return; }
    const ev = { type: this.type || 'message', data: this.dataLines.join('\n'), id: this.lastEventId };
    this.type = '';
    this.dataLines = [];
    this.onEvent(ev);
  }
}

// ------------------------------------------------------------- what the answers mean

/** The backtest's members, as the result tables name them. */
export const MEMBER_LABELS = { ensemble: 'Ensemble', seasonal_naive: 'Seasonal naive', prophet: 'Prophet', lstm: 'LSTM' };

/** A field name in words, capitalised ("product_id" -> "Product id"): both UIs' label for a
 * key they have no label of their own for. */
export function humanize(key) {
  return key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** The inventory plan's keys in the order both UIs list them, with their labels. */
export const INVENTORY_FIELDS = [
  ['on_hand', 'On hand'], ['on_order', 'On order'], ['inventory_position', 'Inventory position'],
  ['avg_daily_demand', 'Avg daily demand'], ['safety_stock', 'Safety stock'],
  ['safety_stock_method', 'Safety stock method'], ['reorder_point', 'Reorder point'], ['min_level', 'Min level'], ['max_level', 'Max level'],
  ['order_quantity', 'Order quantity'], ['suggested_order_qty', 'Suggested order now'],
  ['order_qty_before_constraints', 'Order before supplier constraints'],
  ['days_of_cover', 'Days of cover'], ['stockout_date', 'Projected stockout'], ['order_now', 'Order now?'],
  ['service_level', 'Service level'], ['lead_time_days', 'Lead time (days)'],
  ['z', 'z (safety factor)'], ['eoq', 'EOQ (economic order qty)'], ['fill_rate', 'Expected fill rate'],
  ['target_fill_rate', 'Target fill rate'],
];

/** A number for people: whole from 100 up, one decimal from 10 up, two below (or `digits`);
 * "–" for none. Both UIs format their figures with it. */
export function formatNumber(value, digits) {
  if (value === null || value === undefined || value === '') return '–';
  if (typeof value !== 'number' || !Number.isFinite(value)) return String(value);
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString(undefined, { maximumFractionDigits: d });
}

/** The inventory panel's rows of a forecast's `inventory`: the INVENTORY_FIELDS it has, then
 * any other plain value under its key in words (a newer server's field is still shown; the
 * explanation, a list, is shown as its steps: explanationLines). */
export function inventoryFields(inventory) {
  const inv = inventory || {};
  const known = new Set(INVENTORY_FIELDS.map(([key]) => key));
  return [...INVENTORY_FIELDS.filter(([key]) => key in inv),
    ...Object.keys(inv).filter((key) => !known.has(key) && (inv[key] === null || typeof inv[key] !== 'object'))
      .map((key) => [key, humanize(key)])];
}

/** One inventory value as the panels show it: shares as percentages, yes/no, no stockout in
 * the horizon in words, figures by formatNumber. */
export function formatInventory(key, value) {
  if ((key === 'service_level' || key === 'fill_rate') && typeof value === 'number') {
    return `${(value * 100).toFixed(1).replace(/\.0$/, '')}%`;
  }
  if (key === 'stockout_date') return value ? String(value) : 'none in horizon';
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  return formatNumber(value);
}

/** The heading over an order's explanation (the forecast's inventory panel, a plan row). */
export const EXPLANATION_TITLE = 'How the suggested order is reached';

/** The lines of an order's explanation (the server's `[{step, quantity, text}]`), in its
 * order: demand over the protection interval, the reorder point, the order-up-to level, the
 * order, then each supplier constraint that changed it. [] without one. */
export function explanationLines(steps) {
  return (Array.isArray(steps) ? steps : []).map((s) => String(s?.text ?? '')).filter(Boolean);
}

/** The visible text of a plan row's explanation toggle. */
export const EXPLAIN_BUTTON = 'Why?';

/** The accessible name of a plan row's explanation toggle: it names the row, so a screen
 * reader's list of buttons tells the rows' "Why?" apart. */
export function explainLabel(row) {
  return `${EXPLANATION_TITLE} for ${row.product_id} at ${row.store_id}`;
}

/** Warnings are listed most severe first. */
export const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

/** The period a forecast answer counts in, from its pandas frequency ("D", "W-SUN", "MS"). */
export function periodName(frequency) {
  const code = String(frequency || 'D').toUpperCase();
  return code.startsWith('W') ? 'week' : code.startsWith('M') ? 'month' : 'day';
}

// ------------------------------------------------------------------ live accuracy

/** The scores the accuracy panels list, in order, with their labels. */
export const ACCURACY_FIELDS = [
  ['wape', 'Error (share of volume)'], ['fva', 'Less error than seasonal naive'],
  ['coverage', 'Actuals inside the 95% interval'], ['bias', 'Bias (forecast − actual)'],
  ['mase', 'MASE (error scaled by the history)'],
];

/** What the panel says when nothing is scored yet for the selection (404 no_scores). */
export const NO_SCORES_READING = 'Nothing scored yet: forecasts are scored once an upload brings '
  + 'the actual sales for dates that an active model forecast.';

/** A share as a whole percentage ("12%", signed "+12%"); "–" when the server sent null. */
export function percent(value, signed = false) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  const p = Math.round(value * 100) || 0; // never "-0%"
  return `${signed && p > 0 ? '+' : ''}${p}%`;
}

/** One accuracy score as the panels show it (MASE as a ratio, the rest as percentages). */
export function formatScore(key, value) {
  if (key === 'mase') return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(2) : '–';
  return percent(value, key === 'bias' || key === 'fva');
}

/** The seasonal naive forecast in words: the last season repeated (a week of days; a year of
 * weeks or months). */
function naiveName(frequency) {
  return periodName(frequency) === 'day' ? 'repeating last week' : 'repeating last year';
}

/**
 * What the accuracy panels show of a GET /accuracy report: the newest scored version (the
 * report lists versions newest cutoff first), its total over the selection, its per-date
 * points and warnings, and how many older versions were scored too. null without a report.
 */
export function accuracyView(report) {
  const version = report?.versions?.[0];
  if (!version) return null;
  const name = version.model_version;
  return {
    version,
    total: (report.scores || []).find((s) => s.model_version === name && s.level === 'total') || null,
    points: version.points || [],
    warnings: (report.warnings || []).filter((w) => w.model_version === name),
    older: report.versions.length - 1,
  };
}

/** The line under the reading about the version shown: "Model v7 (trained on sales up to
 * 2024-05-31) · 2 series · 1 older version scored too". */
export function accuracyVersionLine(view) {
  const { version, total, older } = view;
  return `Model ${version.model_version} (trained on sales up to ${version.cutoff}) · ${total.series} series`
    + (older > 0 ? ` · ${older} older version${older === 1 ? '' : 's'} scored too` : '');
}

/** The accuracy chart's height for its width: a third and a bit of it, within 180..260 px. */
export function accuracyChartHeight(width) {
  return Math.round(Math.max(180, Math.min(260, width * 0.35)));
}

/**
 * The report in one or two plain sentences: the scored span, the error as a share of volume,
 * the value added over seasonal naive, the interval's coverage and the bias; then what the
 * warnings (model_degraded, forecast_bias, any other by its message) mean. NO_SCORES_READING
 * for no report (what GET /accuracy's 404 no_scores means for a panel).
 */
export function accuracyReading(report) {
  const view = accuracyView(report);
  if (!view?.total) return NO_SCORES_READING;
  const { version, total, warnings } = view;
  const per = periodName(version.frequency);
  const n = total.periods;
  const span = n === 1 ? `On ${total.first_date} (1 ${per} scored)`
    : `From ${total.first_date} to ${total.last_date} (${n} ${per}s scored)`;
  const clauses = [];
  if (typeof total.wape === 'number') {
    let error = `forecasts were off by ${percent(total.wape)} of volume`;
    if (typeof total.fva === 'number') {
      const gain = Math.round(Math.abs(total.fva) * 100);
      error += gain === 0 ? `, no better than ${naiveName(version.frequency)}`
        : `, ${gain}% ${total.fva > 0 ? 'less' : 'more'} error than ${naiveName(version.frequency)}`;
    }
    clauses.push(error);
  } else {
    clauses.push('nothing was sold, so there is no volume to measure the error against');
  }
  clauses.push(`${percent(total.coverage)} of actuals fell inside the 95% band`);
  if (typeof total.bias === 'number') {
    const size = Math.abs(total.bias);
    const way = total.bias > 0 ? 'over' : 'under';
    clauses.push(size < 0.02 ? 'no lasting over- or under-forecast'
      : size < 0.1 ? `slight ${way}-forecast (${percent(total.bias, true)})`
        : `${way}-forecast by ${percent(size)} of volume`);
  }
  const first = `${span}: ${clauses.join('; ')}.`;
  const notes = warnings.map((w) => {
    if (w.code === 'model_degraded') {
      const live = version.live_mase, past = version.backtest_mase;
      return 'it erred clearly more than in its backtest'
        + (typeof live === 'number' && typeof past === 'number' ? ` (MASE ${live.toFixed(2)} against ${past.toFixed(2)})` : '');
    }
    if (w.code === 'forecast_bias') {
      return `the forecast stayed ${total.bias > 0 ? 'above' : 'below'} the actual sales in every ${per} scored`;
    }
    return String(w.message || w.code).replace(/[.\s]+$/, '');
  });
  if (!notes.length) return first;
  const second = notes.join(', and ');
  const retrain = warnings.some((w) => w.code === 'model_degraded') ? ': retrain on recent data' : '';
  return `${first} Warning: ${second}${retrain}.`;
}

// ------------------------------------------------------------------ policy simulation

/** The policies POST /simulate replays, in the order the sections list them, with their labels. */
export const POLICY_LABELS = { restock: "restock's policy", seed: "the seed's rule", min_max: 'the min/max rule' };

/** The figures the simulation tables list per policy, in order, with their labels. */
export const SIMULATION_FIELDS = [
  ['cycle_service_level', 'Cycles without stockout'], ['fill_rate', 'Fill rate'],
  ['stockout_periods', 'Stockout periods'], ['average_on_hand', 'Average on hand (units)'],
  ['average_on_hand_value', 'Average on hand (value)'], ['orders', 'Orders placed'],
];

/** The figures a report's table lists: SIMULATION_FIELDS, without the stock's value when the
 * report has no unit cost to value it by. */
export function simulationFields(report) {
  return SIMULATION_FIELDS.filter(([key]) => key !== 'average_on_hand_value' || report?.unit_cost != null);
}

/** The policies a report's total has figures for, in POLICY_LABELS' order. */
export function simulatedPolicies(report) {
  return Object.keys(POLICY_LABELS).filter((name) => report?.total?.[name]);
}

/** A share to a tenth of a percent ("95.6%", "95%"): service levels differ by tenths. */
function percent1(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return `${(Math.round(value * 1000) / 10).toLocaleString('en-US')}%`;
}

/** Units, whole and grouped ("3,122"). */
function units(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return Math.round(value).toLocaleString('en-US');
}

/** One simulated figure as the tables show it ("–" where the server sent null). */
export function formatOutcome(key, value) {
  return key === 'cycle_service_level' || key === 'fill_rate' ? percent1(value) : units(value);
}

/**
 * The POST /simulate body from the forecast form: the selection and the policy fields, as
 * forecastBody checks them, without what a replay of the backtest has no use for (the days
 * ahead, the history drawn, the stock on hand now); with the PNG, which is the chart.
 */
export function simulationBody(fields, values, selection = {}) {
  const body = forecastBody(fields, values, selection);
  for (const unused of ['days', 'history', 'on_hand']) delete body[unused];
  return body;
}

/**
 * A POST /simulate report in one sentence: the span replayed, then per policy the share of
 * replenishment cycles free of stockouts (restock's against the target) and the average
 * stock held ("restock's policy kept 95.6% of cycles free of stockouts against a 95% target,
 * holding 3,122 units on average; the seed's rule 95.1% with 3,098; ...").
 */
export function simulationReading(report) {
  const total = report?.total;
  if (!total?.restock) return '';
  const per = periodName(report.frequency);
  const { start, end, periods } = report.period || {};
  const n = report.selection?.series;
  const span = `Replayed over ${periods} ${per}${periods === 1 ? '' : 's'} from ${start} to ${end}`
    + (n ? ` (${n} series)` : '');
  const first = total.restock;
  const clauses = [`${POLICY_LABELS.restock} kept ${percent1(first.cycle_service_level)} of cycles free of `
    + `stockouts against a ${percent1(first.target_service_level)} target, holding `
    + `${units(first.average_on_hand)} units on average`];
  for (const name of simulatedPolicies(report).slice(1)) { // restock's first
    const o = total[name];
    clauses.push(`${POLICY_LABELS[name]} ${percent1(o.cycle_service_level)} with ${units(o.average_on_hand)}`);
  }
  const left = report.skipped?.length || 0;
  const skipped = left ? ` ${left} series had no backtest to replay and ${left === 1 ? 'was' : 'were'} left out.` : '';
  return `${span}: ${clauses.join('; ')}.${skipped}`;
}

// ------------------------------------------------------------------ the replenishment plan

/** The plan's columns both "What to order" tables show, in order, with their labels (GET /plan
 * sends more; the CSV download has them all). */
export const PLAN_COLUMNS = [
  ['product_id', 'Product'], ['store_id', 'Store'], ['category', 'Category'], ['order_now', 'Order now?'],
  ['suggested_order_qty', 'Suggested order'], ['on_hand', 'On hand'], ['on_order', 'On order'],
  ['days_of_cover', 'Days of cover'],
  ['stockout_date', 'Projected stockout'], ['reorder_point', 'Reorder point'],
  ['order_up_to_level', 'Order up to'], ['safety_stock', 'Safety stock'], ['abc_class', 'ABC'],
  ['xyz_class', 'XYZ'], ['warnings', 'Warnings'],
];

/** A plan row's key: one row per (product, store) series. */
export function planRowKey(row) {
  return `${row.product_id}\u0000${row.store_id}`;
}

/** The plan columns a table's text filter searches. */
const PLAN_FILTER_COLUMNS = ['product_id', 'store_id', 'category'];

/** The plan columns of words, left-aligned in both tables; the rest are figures (right-aligned). */
export const PLAN_TEXT_COLUMNS = new Set(['product_id', 'store_id', 'category', 'order_now', 'stockout_date', 'abc_class', 'xyz_class', 'warnings']);

/** The line over a plan table: "12 series, 3 to order now (model v7, from 2024-06-01)." */
export function planReading(answer) {
  const urgent = answer.rows.filter((r) => r.order_now === true).length;
  return `${answer.series} series, ${urgent} to order now (model ${answer.model_version}, from ${answer.start}).`;
}

/** One plan cell as the tables show it: yes/no/– for order now (– : stock unknown), whole
 * units, days to a tenth, warning codes as words (the supplier constraints' too:
 * "order raised to moq"). */
export function formatPlanCell(key, value) {
  if (value === null || value === undefined) return '–';
  if (key === 'order_now') return value ? 'yes' : 'no';
  if (key === 'warnings') return value.map((code) => code.replace(/_/g, ' ')).join(', ');
  if (key === 'days_of_cover') return (Math.round(value * 10) / 10).toLocaleString('en-US');
  return typeof value === 'number' ? units(value) : String(value);
}

/**
 * The GET /plan query from the forecast form: the selection and the horizon and policy
 * fields, as forecastBody checks them, without what a plan takes per series from the server
 * (the stock on hand) or has no use for (the history drawn, the chart).
 */
export function planQuery(fields, values, selection = {}) {
  const query = forecastBody(fields, values, selection);
  for (const unused of ['history', 'plot', 'on_hand']) delete query[unused];
  return query;
}

/** A comparable of a plan cell for sorting: order now yes before no before unknown; unknowns last. */
function planSortValue(key, value) {
  if (key === 'order_now') return value === true ? 0 : value === false ? 1 : null;
  if (key === 'warnings') return value?.length || null;
  return value ?? null;
}

/**
 * The rows a plan table shows: those whose product, store or category contains `filter`
 * (any case), order-now rows always first (the server's urgency order), and within each
 * group sorted by `sort` ({key, descending}; none: the server's order). Unknown cells sort
 * last either way; ties keep the server's order.
 */
export function planRows(rows, { filter = '', sort = null } = {}) {
  const needle = String(filter).trim().toLowerCase();
  const shown = (rows || []).map((row, index) => ({ row, index })).filter(({ row }) => !needle
    || PLAN_FILTER_COLUMNS.some((key) => String(row[key] ?? '').toLowerCase().includes(needle)));
  const compare = (a, b) => {
    const urgent = (a.row.order_now === true ? 0 : 1) - (b.row.order_now === true ? 0 : 1);
    if (urgent || !sort?.key) return urgent || a.index - b.index;
    const x = planSortValue(sort.key, a.row[sort.key]), y = planSortValue(sort.key, b.row[sort.key]);
    if (x === null || y === null) return (x === null) - (y === null) || a.index - b.index;
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return (sort.descending ? -order : order) || a.index - b.index;
  };
  return shown.sort(compare).map(({ row }) => row);
}

/** A plan column header's sort (its aria-sort): 'ascending', 'descending' or 'none'. */
export function planSortState(sort, key) {
  if (sort?.key !== key) return 'none';
  return sort.descending ? 'descending' : 'ascending';
}

/** The mark after a sorted column's label, by its planSortState. */
export const SORT_MARK = { ascending: ' ▲', descending: ' ▼', none: '' };

/** The next sort of a plan table when column `key`'s header is clicked: ascending, then
 * descending, then the server's order again. */
export function nextPlanSort(sort, key) {
  if (sort?.key !== key) return { key, descending: false };
  return sort.descending ? null : { key, descending: true };
}

/** Offer a Blob as a file download (a blob URL on a temporary link, revoked after the click). */
export function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = href;
  link.download = filename;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 0);
}

/** A query string of a request's values (a list value repeated; blanks left out). */
function queryString(values) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(values || {})) {
    for (const one of [].concat(v ?? [])) if (one !== '' && one !== null) query.append(k, String(one));
  }
  const qs = query.toString();
  return qs ? `?${qs}` : '';
}

// ------------------------------------------------------------------ the forecast form

/** The least history the charts draw, in periods. */
const HISTORY_PERIODS = 90;

/** History periods the charts draw next to a forecast of `horizon` periods: four times the
 * horizon, at least HISTORY_PERIODS. The forms ask for as much (see forecastBody). */
export function historyToChart(horizon) {
  return Math.max(HISTORY_PERIODS, 4 * (horizon || 0));
}

/** The form's number fields, in order, with their labels; the first four are always shown. */
export const FORECAST_FIELDS = [
  ['days', 'Days ahead'], ['service_level', 'Service level'], ['lead_time_days', 'Lead time (days)'],
  ['on_hand', 'On hand'], ['lead_time_std_days', 'Lead time std (days)'],
  ['review_period_days', 'Review period (days)'], ['ordering_cost', 'Ordering cost per order'],
  ['holding_cost', 'Holding cost per unit'], ['cover_days', 'Cover days (order up to)'],
];

/** Follow `{"$ref": "#/components/..."}` links inside one OpenAPI document. */
function deref(doc, node) {
  let n = node;
  for (let hops = 0; n && n.$ref && hops < 32; hops++) {
    n = n.$ref.replace(/^#\//, '').split('/')
      .reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return n || null;
}

/**
 * The request fields of POST `path` as the server's /openapi.json declares them:
 * name -> {type, min, max, exclusiveMin, exclusiveMax, default, description} (null where not
 * declared; a nullable field's bounds are those of its non-null branch). Both forms take their
 * input bounds and placeholders (the defaults) from here, so neither can disagree with the API.
 */
export function requestFields(openapi, path = '/forecast') {
  const body = openapi?.paths?.[path]?.post?.requestBody?.content?.['application/json']?.schema;
  const schema = deref(openapi, body);
  const fields = {};
  for (const [name, raw] of Object.entries(schema?.properties || {})) {
    const prop = deref(openapi, raw) || {};
    const branch = (prop.anyOf || [prop]).map((b) => deref(openapi, b) || {}).find((b) => b.type !== 'null') || {};
    const pick = (key) => branch[key] ?? prop[key] ?? null;
    fields[name] = {
      type: pick('type'), min: pick('minimum'), max: pick('maximum'),
      exclusiveMin: pick('exclusiveMinimum'), exclusiveMax: pick('exclusiveMaximum'),
      default: prop.default ?? null, description: prop.description || '',
    };
  }
  return fields;
}

/** An <input type="number">'s min, max and step for a field (an exclusive bound as min/max:
 * the browser cannot say "exclusive"; `fieldProblem` catches the bound itself), and its
 * declared default as the placeholder ("7 (default)"). The default is shown, never filled in:
 * a filled-in value is sent (see forecastBody), and a sent lead time or service level beats
 * the series' own settings from POST /items, so the form's plan would not be the API's. */
export function inputAttrs(field) {
  const attrs = { step: field?.type === 'integer' ? '1' : 'any' };
  const min = field?.min ?? field?.exclusiveMin;
  const max = field?.max ?? field?.exclusiveMax;
  if (min !== null && min !== undefined) attrs.min = String(min);
  if (max !== null && max !== undefined) attrs.max = String(max);
  if (field?.default !== null && field?.default !== undefined) attrs.placeholder = `${field.default} (default)`;
  return attrs;
}

/** What both forms say under their fields about the blank ones. */
export const BLANK_FIELDS_HINT = 'A blank field is not sent: the plan, and a forecast of one product in one store, '
  + 'take it from the item settings (POST /items) where they have it, else the default shown.';

/** What is wrong with a number for a field, in words (null: nothing). */
export function fieldProblem(field, value) {
  if (!Number.isFinite(value)) return 'enter a number';
  if (!field) return null;
  if (field.type === 'integer' && !Number.isInteger(value)) return 'enter a whole number';
  if (field.min !== null && value < field.min) return `must be at least ${field.min}`;
  if (field.exclusiveMin !== null && value <= field.exclusiveMin) return `must be more than ${field.exclusiveMin}`;
  if (field.max !== null && value > field.max) return `must be at most ${field.max}`;
  if (field.exclusiveMax !== null && value >= field.exclusiveMax) return `must be less than ${field.exclusiveMax}`;
  return null;
}

/**
 * The POST /forecast body from the form: the selection, every filled-in number field (a blank
 * one is not sent: the server applies the series' item settings, then its default), the history the chart draws when the server offers
 * `history` (within its declared maximum), and a PNG. A value out of the declared bounds throws an ApiError `invalid_input` whose `field`
 * names the input to focus.
 */
export function forecastBody(fields, values, selection = {}) {
  const body = {};
  for (const [k, v] of Object.entries(selection)) if (v) body[k] = v;
  for (const [name, label] of FORECAST_FIELDS) {
    const raw = String(values[name] ?? '').trim();
    if (raw === '') continue;
    const value = Number(raw);
    const problem = fieldProblem(fields?.[name], value);
    if (problem) {
      const err = new ApiError(0, 'invalid_input', `Check the field "${label}": ${problem}.`);
      err.field = name;
      throw err;
    }
    body[name] = value;
  }
  if (fields?.history) body.history = Math.min(fields.history.max ?? Infinity, historyToChart(body.days));
  body.plot = true;
  return body;
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/**
 * A client bound to a base URL; `getToken` is called on every request, so a changed
 * token is used from the next request (including stream reconnects) on.
 */
export function createClient({ apiBaseUrl = '', getToken = () => '', fetchImpl, XHR } = {}) {
  const base = String(apiBaseUrl || '').replace(/\/+$/, '');
  const doFetch = (...args) => (fetchImpl || globalThis.fetch)(...args);

  const url = (path) => {
    if (!path) return base || '/';
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) return path;
    return base + (path[0] === '/' ? path : `/${path}`);
  };
  const headers = (extra = {}) => {
    const h = { ...extra };
    const t = getToken();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  };
  const where = () => base || (typeof window !== 'undefined' ? window.location.origin : 'the API');

  async function json(method, path, body, { signal } = {}) {
    const init = {
      method,
      headers: headers(body !== undefined ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' }),
      cache: 'no-store',
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    if (signal) init.signal = signal;
    const resp = await send(method, path, init);
    const text = await resp.text();
    return parseBody(resp.status, resp.statusText, text, resp.headers.get('Retry-After'));
  }

  /** GET a binary resource (the forecast's PNG) with the token, as a Blob. */
  async function blob(path) {
    const resp = await send('GET', path, { headers: headers(), cache: 'no-store' });
    if (!resp.ok) {
      const text = await resp.text().catch(() => '');
      throw errorFromResponse(resp.status, resp.statusText, text, resp.headers.get('Retry-After'));
    }
    return resp.blob();
  }

  /** fetch, with an unreachable server as an ApiError `network_error` (an abort stays an abort). */
  async function send(method, path, init) {
    try {
      return await doFetch(url(path), init);
    } catch (e) {
      if (e?.name === 'AbortError') throw e;
      throw new ApiError(0, 'network_error', `${method} ${path} failed: the server at ${where()} could not be reached${e?.message ? ` (${e.message})` : ''}.`);
    }
  }

  /** POST /retrain as multipart with upload progress. Returns {promise, abort}. */
  function upload(file, fields, onProgress = () => {}) {
    const Xhr = XHR || globalThis.XMLHttpRequest;
    const xhr = new Xhr();
    const promise = new Promise((resolve, reject) => {
      xhr.open('POST', url('/retrain'));
      for (const [k, v] of Object.entries(headers({ Accept: 'application/json' }))) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress({
        fraction: e.lengthComputable ? e.loaded / e.total : null, loaded: e.loaded, total: e.lengthComputable ? e.total : file.size,
      });
      xhr.upload.onload = () => onProgress({ fraction: 1, loaded: file.size, total: file.size, sent: true });
      xhr.onload = () => {
        try { resolve(parseBody(xhr.status, xhr.statusText, xhr.responseText, xhr.getResponseHeader('Retry-After'))); } catch (e) { reject(e); }
      };
      xhr.onerror = () => reject(new ApiError(0, 'network_error',
        `The upload failed: the connection to ${where()} was lost or refused${file.size > 10 * 1024 * 1024 ? ' (a large file may be over the server\'s size limit)' : ''}.`));
      xhr.ontimeout = () => reject(new ApiError(0, 'timeout', 'The upload timed out.'));
      xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was aborted.'));
      const fd = new FormData();
      fd.append('file', file, file.name);
      for (const [k, v] of Object.entries(fields || {})) if (v) fd.append(k, v);
      xhr.send(fd);
    });
    return { promise, abort: () => xhr.abort() };
  }

  /**
   * Follow a job's SSE stream until `done` or `error`, reconnecting with Last-Event-ID.
   * Events whose numeric id is not above the last one seen are dropped, so nothing repeats;
   * an event only counts once its terminating blank line arrived, so nothing is lost.
   * When the stream ends early, GET status_url decides: still running -> reconnect (with
   * backoff); finished -> one more pass for the missed events, then onJobFinished(job).
   */
  function followJob({
    eventsUrl, statusUrl, lastEventId = null, onEvent, onConnection = () => {}, onFatal = () => {}, onJobFinished = () => {},
    heartbeatTimeoutMs = 45000, maxFailures = 30, baseDelayMs = 1000, maxDelayMs = 15000,
  }) {
    const stopCtrl = new AbortController();
    let current = null;
    let lastId = lastEventId;
    let lastNum = -Infinity;
    let retryMs = baseDelayMs;
    let terminal = false;
    let failures = 0;
    let terminalSeen = false;

    const handle = (ev) => {
      const num = ev.id !== null && /^-?\d+$/.test(ev.id) ? parseInt(ev.id, 10) : null;
      if (num !== null) {
        if (num <= lastNum) return;
        lastNum = num;
      }
      if (ev.id !== null) lastId = ev.id;
      let data;
      try { data = JSON.parse(ev.data); } catch { data = { message: ev.data }; }
      if (ev.type === 'done' || ev.type === 'error') terminal = true;
      onEvent(ev.type, data, ev.id);
    };

    async function connectOnce() {
      current = new AbortController();
      const ctrl = current;
      const onStop = () => ctrl.abort();
      stopCtrl.signal.addEventListener('abort', onStop, { once: true });
      // No Cache-Control request header: `cache: 'no-store'` does that job, and the header is
      // not CORS-safelisted, so the server's preflight would have to allow it.
      const h = headers({ Accept: 'text/event-stream' });
      if (lastId !== null) h['Last-Event-ID'] = lastId;
      let watchdog = null;
      const arm = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), heartbeatTimeoutMs); };
      try {
        const resp = await doFetch(url(eventsUrl), { headers: h, signal: ctrl.signal, cache: 'no-store' });
        if (!resp.ok) {
          const text = await resp.text().catch(() => '');
          const err = errorFromResponse(resp.status, resp.statusText, text, resp.headers.get('Retry-After'));
          err.fatal = resp.status >= 400 && resp.status < 500 && resp.status !== 408 && resp.status !== 429;
          throw err;
        }
        const ctype = resp.headers.get('Content-Type') || '';
        if (!ctype.includes('text/event-stream')) {
          const err = new ApiError(resp.status, 'bad_response', `The events URL did not answer with an event stream (Content-Type: ${ctype || 'none'}).`);
          err.fatal = true;
          throw err;
        }
        onConnection('open', { lastId });
        failures = 0;
        arm();
        const reader = resp.body.getReader();
        const decoder = new TextDecoder('utf-8');
        const parser = new SSEParser(handle, { onRetry: (ms) => { retryMs = ms; } });
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          parser.push(decoder.decode(value, { stream: true }));
          if (terminal || stopCtrl.signal.aborted) { reader.cancel().catch(() => {}); break; }
        }
      } finally {
        clearTimeout(watchdog);
        stopCtrl.signal.removeEventListener('abort', onStop);
      }
    }

    async function run() {
      while (!stopCtrl.signal.aborted && !terminal) {
        onConnection(failures === 0 && lastId === null ? 'connecting' : 'reconnecting', { lastId, attempt: failures });
        let err = null;
        try { await connectOnce(); } catch (e) { err = e; }
        if (stopCtrl.signal.aborted || terminal) return;
        if (err?.fatal) { onFatal(err); return; }
        failures += 1;
        let job = null;
        try { job = await json('GET', statusUrl); } catch { job = null; }
        if (stopCtrl.signal.aborted || terminal) return;
        if (job && TERMINAL.has(job.status)) {
          if (terminalSeen) { onJobFinished(job); return; }
          terminalSeen = true;
          continue;
        }
        if (failures > maxFailures) {
          onFatal(new ApiError(0, 'stream_lost', `Lost the connection to the training stream after ${failures} attempts${err ? ` (${err.message})` : ''}. The job may still be running on the server.`));
          return;
        }
        const delay = Math.min(retryMs * 2 ** Math.max(0, failures - 1), maxDelayMs);
        onConnection('waiting', { delay, attempt: failures, error: err, lastId });
        await sleep(delay, stopCtrl.signal);
      }
    }

    const done = run().catch((e) => { if (!stopCtrl.signal.aborted) onFatal(e); });
    return {
      done,
      stop: () => stopCtrl.abort(),
      get lastEventId() { return lastId; },
    };
  }

  /** The forecast request's fields and bounds from GET /openapi.json (see requestFields). */
  async function forecastFields() {
    return requestFields(await json('GET', '/openapi.json'));
  }

  /**
   * GET /accuracy for a selection ({product_id, store_id, category}; blanks left out): the
   * report, or null when nothing is scored for it yet (404 no_scores is news, not an error).
   */
  async function accuracy(selection = {}, { signal } = {}) {
    try {
      return await json('GET', `/accuracy${queryString(selection)}`, undefined, { signal });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'no_scores') return null;
      throw e;
    }
  }

  /** POST /simulate (see simulationBody): the report of the three policies replayed. */
  function simulate(body, { signal } = {}) {
    return json('POST', '/simulate', body, { signal });
  }

  /** GET /plan (see planQuery): what to order, one row per series, most urgent first. */
  function plan(query = {}, { signal } = {}) {
    return json('GET', `/plan${queryString(query)}`, undefined, { signal });
  }

  /** GET /plan as CSV with the token, offered as the file plan.csv; resolves once offered. */
  async function downloadPlan(query = {}) {
    saveBlob(await blob(`/plan${queryString({ ...query, format: 'csv' })}`), 'plan.csv');
  }

  return { url, json, blob, upload, followJob, headers, forecastFields, accuracy, simulate, plan, downloadPlan };
}
