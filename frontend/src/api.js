// restock HTTP client used by <RetrainModel>: JSON calls, the CSV upload (XMLHttpRequest,
// for upload progress) and the job event stream (fetch + ReadableStream, so the bearer token
// and Last-Event-ID can be sent; EventSource can send neither).
// Same behaviour as src/restock/web/static/retrain.js, which has no build step.

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

/** One line for humans: "HTTP 413 · payload_too_large: The file is larger ...". */
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
    let resp;
    try {
      resp = await doFetch(url(path), init);
    } catch (e) {
      if (e?.name === 'AbortError') throw e;
      throw new ApiError(0, 'network_error', `${method} ${path} failed: the server at ${where()} could not be reached${e?.message ? ` (${e.message})` : ''}.`);
    }
    const text = await resp.text();
    return parseBody(resp.status, resp.statusText, text, resp.headers.get('Retry-After'));
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

  return { url, json, upload, followJob, headers };
}
