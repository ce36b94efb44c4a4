/* restock retrain page: upload -> live training stream -> result -> forecast.
 *
 * No build step, no dependencies: an ES module served by Flask at /static/retrain.js for the
 * page at /ui and /retrain.html. The API calls, the upload, the training stream (reconnect
 * and resume with Last-Event-ID), the error shape and the forecast form's bounds come from
 * ./client.js, the one client the React component (frontend/) uses too. The API lives on the
 * same origin, or at ?api=<base URL>.
 */
import {
  ACCURACY_FIELDS, ApiError, BLANK_FIELDS_HINT, EXPLAIN_BUTTON, EXPLANATION_TITLE, FORECAST_FIELDS, MEMBER_LABELS, POLICY_LABELS, SEVERITY_ORDER,
  STAGES, STAGE_LABELS, accuracyChartHeight, accuracyReading, accuracyVersionLine, accuracyView, createClient, describeError, explainLabel,
  explanationLines, forecastBody, PLAN_COLUMNS, formatInventory, formatNumber, formatOutcome, formatPlanCell, formatScore,
  historyToChart, humanize, inputAttrs, inventoryFields, nextPlanSort, periodName, PLAN_TEXT_COLUMNS, planQuery, planReading, planRowKey, planRows,
  planSortState, SORT_MARK, simulatedPolicies, simulationBody, simulationFields,
  simulationReading, totalEpochs
} from './client.js';

var TOKEN_KEY = 'restock.token';
var MAX_LOG_LINES = 1000;

var params = new URLSearchParams(window.location.search);
var API_BASE = (params.get('api') || '').replace(/\/+$/, '');

function $(id) { return document.getElementById(id); }

// ---------------------------------------------------------------- helpers
function getToken() {
  try { return window.sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}
function setToken(value) {
  try {
    if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage disabled: token lives for this page only */ memoryToken = value; }
}
var memoryToken = '';
function token() { return getToken() || memoryToken; }

var client = createClient({ apiBaseUrl: API_BASE, getToken: token });

function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}
function fmtElapsed(ms) {
  var s = Math.max(0, Math.floor(ms / 1000));
  var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  var mm = (m < 10 ? '0' : '') + m, ss = (sec < 10 ? '0' : '') + sec;
  return h ? h + ':' + mm + ':' + ss : mm + ':' + ss;
}
function el(tag, attrs, text) {
  var n = document.createElement(tag);
  if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) n.textContent = text;
  return n;
}
function setBar(bar, fraction, indeterminate) {
  var pct = fraction === null || fraction === undefined || isNaN(fraction) ? 0 : Math.max(0, Math.min(1, fraction)) * 100;
  bar.classList.toggle('indeterminate', !!indeterminate);
  bar.setAttribute('aria-valuenow', String(Math.round(pct)));
  if (indeterminate) bar.removeAttribute('aria-valuenow');
  bar.firstElementChild.style.width = pct + '%';
}

// ------------------------------------------------------------------- page
var ui = {};
var selectedFile = null;
var job = null;          // {id, statusUrl, eventsUrl, started, stream, timer, finished}
var health = null;
var seriesItems = [];
var lastForecast = null;

function showError(err, target) {
  var box = target || ui.errorBox;
  if (box === ui.errorBox) {
    ui.errorText.textContent = describe(err);
    var tbody = ui.errorTable.tBodies[0];
    tbody.textContent = '';
    var problems = err && err.details && Array.isArray(err.details.problems) ? err.details.problems : null;
    if (problems && problems.length) {
      problems.forEach(function (p) {
        var tr = el('tr');
        tr.appendChild(el('td', { 'class': 'num' }, p.row === null || p.row === undefined ? '–' : String(p.row)));
        tr.appendChild(el('td', null, p.column === null || p.column === undefined ? '–' : String(p.column)));
        tr.appendChild(el('td', null, p.problem === undefined ? JSON.stringify(p) : String(p.problem)));
        tbody.appendChild(tr);
      });
      ui.errorTableWrap.hidden = false;
      var total = typeof err.details.total === 'number' ? err.details.total : problems.length;
      if (total > problems.length) {
        ui.errorMore.textContent = (total - problems.length).toLocaleString() + ' more problem' + (total - problems.length === 1 ? '' : 's') + ' not listed (' + total.toLocaleString() + ' in all).';
        ui.errorMore.hidden = false;
      } else {
        ui.errorMore.hidden = true;
      }
    } else {
      ui.errorTableWrap.hidden = true;
      ui.errorMore.hidden = true;
    }
    box.hidden = false;
    box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  } else {
    box.textContent = describe(err);
    box.hidden = false;
  }
  if (window.console) console.error('[restock]', err);
}
// The shared one-line description, with what this page can add: where to enter a token, what
// to tick for a file with bad rows, the details of any other error.
function describe(err) {
  var msg = describeError(err);
  if (err instanceof ApiError) {
    if (err.status === 401) msg += ' Enter it under "Access token".';
    if (err.status === 422 && err.details && err.details.problems) {
      msg += (/\bstored\b/.test(err.message) ? '' : ' Nothing was stored.') + (ui.optSkip && !ui.optSkip.checked ? ' Tick "Skip bad rows" to store the good rows anyway.' : '');
    } else if (err.details && !err.details.problems && typeof err.details === 'object') {
      var extra = detailsText(err.details);
      if (extra) msg += '\n' + extra;
    }
  }
  return msg;
}
function detailsText(d) {
  try {
    if (Array.isArray(d)) return d.map(function (x) { return typeof x === 'string' ? x : JSON.stringify(x); }).join('\n');
    var parts = [];
    for (var k in d) parts.push(k + ': ' + (typeof d[k] === 'string' ? d[k] : JSON.stringify(d[k])));
    return parts.join('\n');
  } catch (e) { return ''; }
}
function clearError() { ui.errorBox.hidden = true; }

// ---- health / token
function refreshHealth() {
  return client.json('GET', '/').then(function (h) {
    health = h || {};
    var parts = ['Server ' + (health.status || 'ok')];
    if (health.model_version) {
      parts.push('model ' + health.model_version + (health.trained_at ? ' (trained ' + new Date(health.trained_at).toLocaleString() + ')' : ''));
    } else {
      parts.push('no model yet');
    }
    if (health.rows !== undefined && health.rows !== null) parts.push(formatNumber(health.rows, 0) + ' rows');
    if (health.series !== undefined && health.series !== null) parts.push(formatNumber(health.series, 0) + ' series');
    if (health.queue !== undefined && health.queue !== null) parts.push(queueText(health.queue));
    ui.serverStatus.textContent = parts.join(' · ');
    ui.serverStatus.classList.remove('bad');
    setModelAvailable(health.model_version || null);
    if (!requestFields) loadRequestFields();
    return health;
  }, function (err) {
    ui.serverStatus.textContent = describe(err);
    ui.serverStatus.classList.add('bad');
    if (err.status === 401) { ui.tokenPanel.open = true; }
    return null;
  });
}

function queueText(q) {
  if (typeof q !== 'object') return 'queue: ' + q;
  var bits = [];
  if (typeof q.running === 'number') bits.push(q.running + ' running');
  if (typeof q.queued === 'number') bits.push(q.queued + ' queued');
  return 'training queue: ' + (bits.length ? bits.join(', ') : 'unknown');
}

function updateTokenState() {
  ui.tokenState.textContent = token() ? 'A token is set and sent with every request.' : 'No token set.';
}

// ---- upload
function pickFile(file) {
  selectedFile = file || null;
  ui.fileName.textContent = file ? file.name + ' · ' + fmtBytes(file.size) : '';
  ui.uploadButton.disabled = !file || !!(job && !job.finished);
  clearError();
}

function startUpload(ev) {
  if (ev) ev.preventDefault();
  clearError();
  if (!selectedFile) { showError(new ApiError(0, 'no_file', 'Choose a CSV file first.')); ui.fileInput.focus(); return; }
  if (selectedFile.size === 0) { showError(new ApiError(0, 'empty_file', 'The file "' + selectedFile.name + '" is empty.')); return; }
  if (job && !job.finished) { showError(new ApiError(0, 'busy', 'A training job is still running; wait for it or cancel it.')); return; }
  var fields = { weights: ui.optWeights.value };
  if (ui.optSkip.checked) fields.on_error = 'skip';
  if (ui.optLast.checked) fields.on_duplicate = 'last';

  ui.uploadButton.disabled = true;
  ui.uploadSummary.hidden = true;
  ui.uploadProgressWrap.hidden = false;
  ui.uploadProgress.classList.remove('failed');
  setBar(ui.uploadProgress, 0);
  ui.uploadProgressText.textContent = '0%';
  var file = selectedFile;
  client.upload(file, fields, function (p) {
    if (p.sent) {
      setBar(ui.uploadProgress, 1);
      ui.uploadProgressText.textContent = 'Sent ' + fmtBytes(p.total) + ' · the server is checking the file…';
    } else if (p.fraction === null) {
      setBar(ui.uploadProgress, 0, true);
      ui.uploadProgressText.textContent = fmtBytes(p.loaded) + ' sent';
    } else {
      setBar(ui.uploadProgress, p.fraction);
      ui.uploadProgressText.textContent = fmtBytes(p.loaded) + ' of ' + fmtBytes(p.total) + ' (' + Math.round(p.fraction * 100) + '%)';
    }
  }).promise.then(function (resp) {
    setBar(ui.uploadProgress, 1);
    ui.uploadProgressText.textContent = 'Accepted';
    if (!resp || !resp.job_id) throw new ApiError(202, 'bad_response', 'The server accepted the upload but returned no job id.');
    var up = resp.upload || {};
    var bits = [];
    ['rows_read', 'inserted', 'updated', 'skipped'].forEach(function (k) {
      if (up[k] !== undefined && up[k] !== null) bits.push(k.replace('_', ' ') + ': ' + formatNumber(up[k], 0));
    });
    ui.uploadSummary.textContent = 'Upload accepted (' + file.name + '). ' + bits.join(' · ');
    ui.uploadSummary.hidden = false;
    startJob(resp);
  }).catch(function (err) {
    if (err && err.status) setBar(ui.uploadProgress, 1); // the server answered: all was sent
    ui.uploadProgress.classList.add('failed');
    ui.uploadProgressText.textContent = err && err.status ? 'Rejected by the server' : 'Failed';
    showError(err);
    ui.uploadButton.disabled = !selectedFile;
  });
}

// ---- training
function renderStages(current, failed) {
  var idx = current ? STAGES.indexOf(current) : -1;
  Array.prototype.forEach.call(ui.stageList.children, function (li, i) {
    var state = 'pending';
    if (current === 'done') state = 'done';
    else if (idx >= 0 && i < idx) state = 'done';
    else if (i === idx) state = failed ? 'failed' : 'current';
    li.setAttribute('data-state', state);
    if (state === 'current' || state === 'failed') li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
    var label = STAGE_LABELS[STAGES[i]];
    li.setAttribute('aria-label', label + ' (' + (state === 'current' ? 'in progress' : state) + ')');
  });
}

function setJobStatus(status) {
  ui.jobStatus.textContent = status;
  ui.jobStatus.className = 'status-pill ' + status;
}

function startJob(resp) {
  if (job && job.stream) job.stream.stop();
  if (job && job.timer) clearInterval(job.timer);
  var id = resp.job_id;
  job = {
    id: id,
    statusUrl: resp.status_url || '/jobs/' + encodeURIComponent(id),
    eventsUrl: resp.events_url || '/jobs/' + encodeURIComponent(id) + '/events',
    started: Date.now(), finished: false, stage: null, cancelling: false
  };
  ui.trainingSection.hidden = false;
  ui.resultSection.hidden = true;
  ui.jobId.textContent = id;
  setJobStatus(resp.status || 'queued');
  ui.elapsed.textContent = '00:00';
  ui.eventLog.textContent = '';
  ui.eventCount.textContent = '0';
  ui.stageMessage.textContent = 'Waiting for the worker…';
  ui.overallProgressText.textContent = '0%';
  setBar(ui.overallProgress, 0);
  ui.epochBlock.hidden = true;
  ui.connection.textContent = '';
  ui.connection.classList.remove('bad');
  ui.cancelButton.disabled = false;
  ui.cancelButton.hidden = false;
  renderStages(null);
  job.timer = setInterval(function () { ui.elapsed.textContent = fmtElapsed(Date.now() - job.started); }, 1000);
  ui.trainingSection.scrollIntoView({ block: 'start', behavior: 'smooth' });
  var thisJob = job;
  job.stream = client.followJob({
    eventsUrl: job.eventsUrl,
    statusUrl: job.statusUrl,
    onEvent: function (type, data, id) { if (job === thisJob) onJobEvent(type, data, id); },
    onConnection: function (s, info) { if (job === thisJob) onConnection(s, info); },
    onFatal: function (err) { if (job === thisJob) finishJob('failed', err); },
    onJobFinished: function (st) { if (job === thisJob) onJobFinishedFromStatus(st); }
  });
}

function logLine(id, text, cls) {
  var li = el('li', { 'data-event-id': id === null || id === undefined ? '' : id, 'class': cls || null }, text);
  if (id !== null && id !== undefined && /^\d+$/.test(String(id))) li.value = parseInt(id, 10);
  ui.eventLog.appendChild(li);
  while (ui.eventLog.children.length > MAX_LOG_LINES) ui.eventLog.removeChild(ui.eventLog.firstChild);
  ui.eventCount.textContent = String(Number(ui.eventCount.textContent) + 1);
  ui.eventLog.scrollTop = ui.eventLog.scrollHeight;
}

function onConnection(s, info) {
  if (s === 'open') {
    ui.connection.textContent = info.lastId !== null ? 'Reconnected; resumed after event ' + info.lastId + '.' : 'Connected to the training stream.';
    ui.connection.classList.remove('bad');
  } else if (s === 'waiting') {
    ui.connection.textContent = 'Connection lost' + (info.error ? ' (' + info.error.message + ')' : '') + '. Reconnecting in ' + Math.round(info.delay / 1000) + ' s (attempt ' + info.attempt + ')' + (info.lastId !== null ? ', resuming after event ' + info.lastId : '') + '…';
    ui.connection.classList.add('bad');
  } else if (s === 'reconnecting') {
    ui.connection.textContent = 'Reconnecting' + (info.lastId !== null ? ', resuming after event ' + info.lastId : '') + '…';
  } else if (s === 'connecting') {
    ui.connection.textContent = 'Connecting to the training stream…';
  }
}

function onJobEvent(type, data, id) {
  data = data || {};
  if (type === 'progress') {
    if (job.finished) return;
    setJobStatus(job.cancelling ? 'cancelling' : 'running');
    if (data.stage) { job.stage = data.stage; renderStages(data.stage); }
    if (typeof data.progress === 'number') {
      setBar(ui.overallProgress, data.progress);
      ui.overallProgressText.textContent = Math.round(data.progress * 100) + '%';
    }
    var label = STAGE_LABELS[data.stage] || data.stage || '';
    var epochs = totalEpochs(data);
    ui.stageMessage.textContent = (label ? label + ': ' : '') + (data.message || '');
    if (data.epoch !== undefined && data.epoch !== null) {
      ui.epochBlock.hidden = false;
      setBar(ui.epochProgress, epochs ? data.epoch / epochs : 0, !epochs);
      ui.epochText.textContent = 'LSTM epoch ' + data.epoch + (epochs ? ' of ' + epochs : '');
      var loss = [];
      if (typeof data.loss === 'number') loss.push('loss ' + data.loss.toPrecision(4));
      if (typeof data.val_loss === 'number') loss.push('val loss ' + data.val_loss.toPrecision(4));
      ui.epochLoss.textContent = loss.join(' · ');
    }
    var epochNote = data.epoch !== undefined && data.epoch !== null && !/epoch/i.test(data.message || '')
      ? ' (epoch ' + data.epoch + (epochs ? '/' + epochs : '') + (typeof data.loss === 'number' ? ', loss ' + data.loss.toPrecision(4) : '') + ')' : '';
    logLine(id, '[' + (data.stage || '?') + '] ' + (typeof data.progress === 'number' ? Math.round(data.progress * 100) + '% ' : '') + (data.message || '') + epochNote);
  } else if (type === 'done') {
    logLine(id, '[done] model ' + (data.model_version || '?'), 'ok');
    finishJob('succeeded', null, data);
  } else if (type === 'error') {
    logLine(id, '[error] ' + (data.code ? data.code + ': ' : '') + (data.message || ''), 'bad');
    if (data.code === 'cancelled') finishJob('cancelled');
    else finishJob('failed', new ApiError(0, data.code || 'training_failed', 'Training failed' + (job.stage ? ' during "' + job.stage + '"' : '') + ': ' + (data.message || 'no message')));
  } else {
    logLine(id, '[' + type + '] ' + JSON.stringify(data));
  }
}

function onJobFinishedFromStatus(st) {
  logLine(null, '[status] job ' + st.status + ' (from GET ' + job.statusUrl + ')');
  if (st.status === 'succeeded') finishJob('succeeded', null, { model_version: st.model_version, metrics: null });
  else if (st.status === 'cancelled') finishJob('cancelled');
  else finishJob('failed', new ApiError(0, (st.error && st.error.code) || 'training_failed', 'Training failed: ' + (st.error ? (st.error.message || JSON.stringify(st.error)) : 'no reason given')));
}

function finishJob(status, err, done) {
  if (job.finished) return;
  job.finished = true;
  clearInterval(job.timer);
  ui.elapsed.textContent = fmtElapsed(Date.now() - job.started);
  if (job.stream) job.stream.stop();
  setJobStatus(status);
  ui.cancelButton.disabled = true;
  ui.cancelButton.hidden = true;
  ui.uploadButton.disabled = !selectedFile;
  if (status === 'succeeded') {
    renderStages('done');
    setBar(ui.overallProgress, 1);
    ui.overallProgressText.textContent = '100%';
    ui.stageMessage.textContent = 'Training finished.';
    ui.connection.textContent = '';
    ui.connection.classList.remove('bad');
    showResult(done || {});
    refreshHealth();
  } else if (status === 'cancelled') {
    renderStages(job.stage, true);
    ui.stageMessage.textContent = 'Training cancelled. The active model did not change.';
    ui.connection.textContent = '';
  } else {
    renderStages(job.stage, true);
    ui.stageMessage.textContent = 'Training stopped.';
    showError(err);
  }
}

function cancelJob() {
  if (!job || job.finished) return;
  ui.cancelButton.disabled = true;
  job.cancelling = true;
  setJobStatus('cancelling');
  var thisJob = job;
  client.json('DELETE', job.statusUrl).then(function (resp) {
    if (job !== thisJob || job.finished) return;
    logLine(null, '[cancel] requested');
    if (resp && resp.status === 'cancelled') finishJob('cancelled');
    else ui.stageMessage.textContent = 'Cancelling: the job stops at its next step…';
  }, function (err) {
    if (job !== thisJob) return;
    job.cancelling = false;
    ui.cancelButton.disabled = false;
    setJobStatus('running');
    showError(err);
  });
}

// ---- result
function showResult(done) {
  ui.resultSection.hidden = false;
  ui.modelVersion.textContent = done.model_version || '(unknown)';
  var tbody = ui.metricsTable.tBodies[0];
  tbody.textContent = '';
  var m = done.metrics || null;
  ui.accuracySummary.className = 'accuracy';
  if (!m) {
    ui.accuracySummary.textContent = 'The job finished; its backtest metrics were not in the stream.';
    ui.metricsTable.hidden = true;
    return;
  }
  ui.metricsTable.hidden = false;
  var keys = ['ensemble', 'seasonal_naive', 'prophet', 'lstm'].filter(function (k) { return m[k]; });
  Object.keys(m).forEach(function (k) { if (keys.indexOf(k) < 0 && m[k] && typeof m[k] === 'object') keys.push(k); });
  var best = null;
  keys.forEach(function (k) { if (typeof m[k].mase === 'number' && (best === null || m[k].mase < m[best].mase)) best = k; });
  keys.forEach(function (k) {
    var row = m[k];
    var tr = el('tr', { 'data-model': k, 'class': k === best ? 'best' : null });
    tr.appendChild(el('th', { scope: 'row' }, (MEMBER_LABELS[k] || k) + (k === best ? ' (best)' : '')));
    ['mase', 'wape', 'smape', 'bias'].forEach(function (c) {
      tr.appendChild(el('td', { 'class': 'num', 'data-testid': 'metric-' + k + '-' + c }, formatNumber(row[c], 3)));
    });
    tbody.appendChild(tr);
  });
  var e = m.ensemble && m.ensemble.mase, n = m.seasonal_naive && m.seasonal_naive.mase;
  if (typeof e === 'number' && typeof n === 'number') {
    var better = e < n;
    var rel = n > 0 ? Math.abs(1 - e / n) * 100 : null;
    ui.accuracySummary.textContent = 'Backtest MASE: ensemble ' + formatNumber(e, 3) + ' vs seasonal naive ' + formatNumber(n, 3) + ' — ' +
      (e === n ? 'no better than the naive baseline.' : (rel !== null ? rel.toFixed(1) + '% ' : '') + (better ? 'lower error than the naive baseline.' : 'higher error than the naive baseline.'));
    ui.accuracySummary.classList.add(better ? 'good' : 'bad');
  } else {
    ui.accuracySummary.textContent = 'Ensemble MASE: ' + formatNumber(e, 3) + '; seasonal naive MASE: ' + formatNumber(n, 3) + '.';
  }
}

// ---- forecast form
function setModelAvailable(version) {
  if (version) {
    ui.forecastModel.textContent = 'Active model: ' + version;
    var first = ui.forecastForm.hidden;
    ui.forecastForm.hidden = false;
    ui.planPanel.hidden = false;
    if (first || ui.forecastForm.getAttribute('data-version') !== version) {
      ui.forecastForm.setAttribute('data-version', version);
      loadSeries();
    }
  } else {
    ui.forecastModel.textContent = 'No model is active yet: upload data to train one.';
    ui.forecastForm.hidden = true;
    ui.planPanel.hidden = true;
  }
}

function loadSeries() {
  var pageSize = 500, maxPages = 20, items = [];
  ui.seriesStatus.textContent = 'Loading series…';
  function page(offset, n) {
    return client.json('GET', '/series?limit=' + pageSize + '&offset=' + offset).then(function (resp) {
      var got = (resp && resp.items) || [];
      items = items.concat(got);
      var total = resp && typeof resp.total === 'number' ? resp.total : items.length;
      if (got.length && items.length < total && n + 1 < maxPages) return page(offset + got.length, n + 1);
      return total;
    });
  }
  return page(0, 0).then(function (total) {
    seriesItems = items;
    fillPickers();
    ui.seriesStatus.textContent = items.length < total
      ? 'Showing the first ' + items.length.toLocaleString() + ' of ' + total.toLocaleString() + ' series in the pickers.'
      : items.length.toLocaleString() + ' series available.';
  }, function (err) {
    ui.seriesStatus.textContent = 'Could not load the series list: ' + describe(err);
  });
}

function uniqueSorted(values) {
  var seen = {}, out = [];
  values.forEach(function (v) { if (v !== null && v !== undefined && v !== '' && !seen[v]) { seen[v] = 1; out.push(String(v)); } });
  return out.sort(function (a, b) { return a.localeCompare(b, undefined, { numeric: true }); });
}
function fillSelect(select, values, allLabel) {
  var keep = select.value;
  select.textContent = '';
  select.appendChild(el('option', { value: '' }, allLabel));
  values.forEach(function (v) { select.appendChild(el('option', { value: v }, v)); });
  select.value = values.indexOf(keep) >= 0 ? keep : '';
}
function fillPickers() {
  var store = ui.fcStore.value, cat = ui.fcCategory.value;
  fillSelect(ui.fcCategory, uniqueSorted(seriesItems.map(function (s) { return s.category; })), 'All categories');
  fillSelect(ui.fcStore, uniqueSorted(seriesItems.map(function (s) { return s.store_id; })), 'All stores');
  ui.fcStore.value = store && Array.prototype.some.call(ui.fcStore.options, function (o) { return o.value === store; }) ? store : '';
  ui.fcCategory.value = cat && Array.prototype.some.call(ui.fcCategory.options, function (o) { return o.value === cat; }) ? cat : '';
  filterProducts();
}
function filterProducts() {
  var store = ui.fcStore.value, cat = ui.fcCategory.value;
  var products = uniqueSorted(seriesItems.filter(function (s) {
    return (!store || String(s.store_id) === store) && (!cat || String(s.category) === cat);
  }).map(function (s) { return s.product_id; }));
  fillSelect(ui.fcProduct, products, 'All products');
}

// The request's fields and bounds as the server declares them (null until /openapi.json answered).
var requestFields = null;

// Give every number input the server's bounds and its default as the placeholder (never as a
// value: a value is sent, and would beat the series' item settings; see inputAttrs).
function loadRequestFields() {
  return client.forecastFields().then(function (fields) {
    requestFields = fields;
    ui.boundsStatus.hidden = true;
    FORECAST_FIELDS.forEach(function (f) {
      var input = ui.forecastForm.elements.namedItem(f[0]), field = fields[f[0]];
      if (!input || !field) return;
      var attrs = inputAttrs(field);
      ['min', 'max', 'step', 'placeholder'].forEach(function (a) { if (a in attrs) input.setAttribute(a, attrs[a]); else input.removeAttribute(a); });
      if (field.description) input.title = field.description;
    });
  }, function (err) {
    ui.boundsStatus.textContent = 'Could not read the request\'s bounds from /openapi.json (' + err.message + '); the server still checks them.';
    ui.boundsStatus.hidden = false;
  });
}

/** The forecast form's number fields as typed, by name. */
function formValues() {
  var values = {};
  FORECAST_FIELDS.forEach(function (f) { values[f[0]] = ui.forecastForm.elements.namedItem(f[0]).value; });
  return values;
}

/** The forecast form's selection (blank: all). */
function formSelection() {
  return { product_id: ui.fcProduct.value, store_id: ui.fcStore.value, category: ui.fcCategory.value };
}

/** The request `build` (forecastBody, simulationBody, planQuery) makes of the form now,
 * or null with its problem shown in `box` and its field focused. */
function fromForm(build, box) {
  box.hidden = true;
  try {
    return build(requestFields, formValues(), formSelection());
  } catch (err) {
    showError(err, box);
    ui.forecastForm.elements.namedItem(err.field).focus();
    return null;
  }
}

function submitForecast(ev) {
  ev.preventDefault();
  var body = fromForm(forecastBody, ui.forecastError);
  if (!body) return;
  ui.forecastSubmit.disabled = true;
  ui.forecastSubmit.textContent = 'Loading…';
  var selection = { product_id: body.product_id, store_id: body.store_id, category: body.category };
  client.json('POST', '/forecast', body).then(function (resp) {
    lastForecast = resp;
    renderForecast(resp);
    loadAccuracy(selection);
  }, function (err) {
    showError(err, ui.forecastError);
  }).then(function () {
    ui.forecastSubmit.disabled = false;
    ui.forecastSubmit.textContent = 'Show forecast';
  });
}


function renderForecast(resp) {
  resp = resp || {};
  ui.forecastOutput.hidden = false;
  var sel = resp.selection;
  var selText = sel && typeof sel === 'object'
    ? Object.keys(sel).filter(function (k) { return sel[k] !== null && sel[k] !== undefined && sel[k] !== '' && !(Array.isArray(sel[k]) && !sel[k].length); })
      .map(function (k) { return humanize(k) + ': ' + (Array.isArray(sel[k]) ? sel[k].join(', ') : typeof sel[k] === 'object' ? JSON.stringify(sel[k]) : sel[k]); }).join(' · ')
    : (sel ? String(sel) : '');
  ui.forecastTitleLine.textContent = 'Model ' + (resp.model_version || '?') + ' · ' + (selText || 'all series') + (resp.frequency ? ' · ' + resp.frequency : '');

  var inv = resp.inventory || {};
  ui.orderBanner.hidden = true;
  if (inv.order_now === true) {
    ui.orderBanner.className = 'alert error';
    ui.orderBanner.textContent = 'Order now: stock is at or below the reorder point' + (inv.suggested_order_qty !== undefined && inv.suggested_order_qty !== null ? '. Suggested order: ' + formatNumber(inv.suggested_order_qty) + ' units.' : '.');
    ui.orderBanner.hidden = false;
  }
  ui.inventory.replaceChildren.apply(ui.inventory, inventoryFields(inv).map(function (f) {
    var d = el('div', { 'data-testid': 'inv-' + f[0], 'data-key': f[0], 'class': f[0] === 'order_now' && inv[f[0]] === true ? 'highlight' : null });
    d.appendChild(el('dt', null, f[1]));
    d.appendChild(el('dd', null, formatInventory(f[0], inv[f[0]])));
    return d;
  }));
  var steps = explanationLines(inv.explanation);
  ui.inventoryExplanation.hidden = !steps.length;
  ui.inventoryExplanationSteps.replaceChildren.apply(ui.inventoryExplanationSteps, steps.map(function (text) { return el('li', null, text); }));

  ui.warnings.textContent = '';
  var warnings = (resp.warnings || []).slice().sort(function (a, b) { return (SEVERITY_ORDER[a.severity] === undefined ? 3 : SEVERITY_ORDER[a.severity]) - (SEVERITY_ORDER[b.severity] === undefined ? 3 : SEVERITY_ORDER[b.severity]); });
  if (!warnings.length) {
    ui.warnings.appendChild(el('li', { 'class': 'none', 'data-severity': 'none' }, 'No warnings.'));
  }
  warnings.forEach(function (w) {
    var li = el('li', { 'data-severity': w.severity || 'info', 'data-code': w.code || '' });
    li.appendChild(el('span', { 'class': 'sev' }, w.severity || 'info'));
    li.appendChild(document.createTextNode(w.message || ''));
    if (w.code) li.appendChild(el('span', { 'class': 'code' }, '(' + w.code + ')'));
    ui.warnings.appendChild(li);
  });

  if (resp.plot_url) {
    ui.plotLink.href = client.url(resp.plot_url);
    ui.plotLink.setAttribute('data-plot-url', resp.plot_url);
    ui.plotLink.hidden = false;
  } else {
    ui.plotLink.hidden = true;
  }

  var tbody = ui.forecastTable.tBodies[0];
  tbody.textContent = '';
  (resp.forecast || []).forEach(function (p) {
    var tr = el('tr');
    tr.appendChild(el('td', null, p.date));
    ['yhat', 'yhat_lower', 'yhat_upper', 'prophet', 'lstm'].forEach(function (k) { tr.appendChild(el('td', { 'class': 'num' }, formatNumber(p[k]))); });
    tbody.appendChild(tr);
  });

  drawChart(resp);
  ui.forecastOutput.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

// ---- live accuracy of the forecast's selection (GET /accuracy)
var accuracyAsked = 0; // only the answer to the latest request is shown

function loadAccuracy(selection) {
  var asked = ++accuracyAsked;
  ui.accuracyReading.textContent = 'Loading the scores…';
  ui.accuracyReading.classList.remove('bad');
  ui.accuracyError.hidden = true;
  ui.accuracyBody.hidden = true;
  client.accuracy(selection).then(function (report) {
    if (asked === accuracyAsked) renderAccuracy(report);
  }, function (err) {
    if (asked !== accuracyAsked) return;
    ui.accuracyReading.textContent = '';
    showError(err, ui.accuracyError);
  });
}

function renderAccuracy(report) {
  var view = accuracyView(report);
  ui.accuracyReading.textContent = accuracyReading(report);
  ui.accuracyReading.classList.toggle('bad', !!(view && view.warnings.length));
  if (!view || !view.total) return;
  ui.accuracyVersion.textContent = accuracyVersionLine(view);
  ui.accuracyScores.textContent = '';
  ACCURACY_FIELDS.forEach(function (f) {
    var d = el('div', { 'data-testid': 'acc-' + f[0] });
    d.appendChild(el('dt', null, f[1]));
    d.appendChild(el('dd', null, formatScore(f[0], view.total[f[0]])));
    ui.accuracyScores.appendChild(d);
  });
  var tbody = ui.accuracyTable.tBodies[0];
  tbody.textContent = '';
  view.points.forEach(function (p) {
    var tr = el('tr');
    tr.appendChild(el('td', null, p.date));
    ['actual', 'forecast', 'naive'].forEach(function (k) { tr.appendChild(el('td', { 'class': 'num' }, formatNumber(p[k]))); });
    tbody.appendChild(tr);
  });
  ui.accuracyBody.hidden = false;
  drawAccuracyChart(view.points, view.version.frequency);
}

// Actual, forecast and seasonal naive per scored period: three lines on one axis.
function drawAccuracyChart(points, frequency) {
  var svg = ui.accuracyChart;
  svg.textContent = '';
  var rows = points.map(function (p) { return { t: parseDate(p.date), actual: p.actual, forecast: p.forecast, naive: p.naive }; })
    .filter(function (r) { return r.t !== null; });
  var width = Math.max(300, Math.round(svg.parentNode.clientWidth || 800));
  var height = accuracyChartHeight(width);
  var m = { top: 16, right: 16, bottom: 30, left: 48 };
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.appendChild(svgEl('title', null, 'Forecast against actual'));
  if (!rows.length) return;
  var t0 = rows[0].t, t1 = rows[rows.length - 1].t;
  if (t1 === t0) t1 = t0 + 86400000;
  var top = 0;
  rows.forEach(function (r) { top = Math.max(top, r.actual, r.forecast, r.naive); });
  var y = niceTicks(top * 1.05, 4);
  var pw = width - m.left - m.right, ph = height - m.top - m.bottom;
  function x(t) { return m.left + (t - t0) / (t1 - t0) * pw; }
  function yv(v) { return m.top + ph - Math.max(0, v) / y.max * ph; }
  y.ticks.forEach(function (v) {
    svg.appendChild(svgEl('line', { 'class': 'grid-line', x1: m.left, x2: m.left + pw, y1: yv(v), y2: yv(v) }));
    svg.appendChild(svgEl('text', { x: m.left - 6, y: yv(v) + 4, 'text-anchor': 'end' }, formatNumber(v)));
  });
  svg.appendChild(svgEl('line', { 'class': 'axis', x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph }));
  [[t0, 'start'], [t1, 'end']].forEach(function (a) {
    svg.appendChild(svgEl('text', { x: x(a[0]), y: m.top + ph + 18, 'text-anchor': a[1] }, fmtDate(a[0], true)));
  });
  svg.appendChild(svgEl('text', { x: m.left, y: 11, 'text-anchor': 'start' }, 'sales / ' + periodName(frequency)));
  [['naive', 'naive'], ['actual', 'history'], ['forecast', 'forecast']].forEach(function (line) {
    var d = rows.map(function (r, k) { return (k ? 'L' : 'M') + x(r.t).toFixed(1) + ',' + yv(r[line[0]]).toFixed(1); }).join('');
    svg.appendChild(svgEl('path', { 'class': line[1], 'data-testid': 'accuracy-' + line[0], d: d }));
  });
}

// ---- "Would this policy have worked?" (POST /simulate of the form's selection and policy)
var simulationAsked = 0; // only the answer to the latest request is shown
var simulationImage = null; // object URL of the chart shown, revoked when replaced

function submitSimulation() {
  var body = fromForm(simulationBody, ui.simulationError);
  if (!body) return;
  var asked = ++simulationAsked;
  ui.simulateSubmit.disabled = true;
  ui.simulateSubmit.textContent = 'Simulating…';
  ui.simulationBody.hidden = true;
  client.simulate(body).then(function (report) {
    if (asked !== simulationAsked) return null;
    renderSimulation(report);
    return report.plot_url ? client.blob(report.plot_url).then(function (blob) {
      if (asked === simulationAsked) showSimulationChart(URL.createObjectURL(blob));
    }) : null;
  }).catch(function (err) {
    if (asked === simulationAsked) showError(err, ui.simulationError);
  }).then(function () {
    if (asked !== simulationAsked) return;
    ui.simulateSubmit.disabled = false;
    ui.simulateSubmit.textContent = 'Simulate the policy';
  });
}

function showSimulationChart(objectUrl) {
  if (simulationImage) URL.revokeObjectURL(simulationImage);
  simulationImage = objectUrl;
  ui.simulationChart.hidden = !objectUrl;
  if (objectUrl) ui.simulationChart.src = objectUrl; else ui.simulationChart.removeAttribute('src');
}

function renderSimulation(report) {
  showSimulationChart(null);
  ui.simulationReading.textContent = simulationReading(report);
  var shown = simulationFields(report);
  var head = el('tr');
  head.appendChild(el('th', { scope: 'col' }, 'Policy'));
  shown.forEach(function (f) { head.appendChild(el('th', { scope: 'col' }, f[1])); });
  ui.simulationTable.tHead.replaceChildren(head);
  var body = ui.simulationTable.tBodies[0];
  body.replaceChildren();
  simulatedPolicies(report).forEach(function (name) {
    var outcome = report.total[name];
    var row = el('tr', { 'data-testid': 'sim-' + name });
    row.appendChild(el('th', { scope: 'row' }, POLICY_LABELS[name]));
    shown.forEach(function (f) { row.appendChild(el('td', { 'class': 'num' }, formatOutcome(f[0], outcome[f[0]]))); });
    body.appendChild(row);
  });
  ui.simulationBody.hidden = false;
}

// ---- "What to order" (GET /plan of the form's selection and policy; a CSV download of it)
var plan = { asked: 0, answer: null, sort: null, explained: new Set() }; // only the answer to the latest request is shown; explained: the rows whose explanation is open

/** The plan query of the form as it is now, or null with its problem shown. */
function currentPlanQuery() {
  return fromForm(planQuery, ui.planError);
}

function submitPlan() {
  var query = currentPlanQuery();
  if (!query) return;
  var asked = ++plan.asked;
  ui.planSubmit.disabled = true;
  ui.planSubmit.textContent = 'Loading…';
  ui.planBody.hidden = true;
  client.plan(query).then(function (answer) {
    if (asked !== plan.asked) return;
    plan.answer = answer;
    ui.planReading.textContent = planReading(answer);
    renderPlanRows();
    ui.planBody.hidden = false;
  }, function (err) {
    if (asked === plan.asked) showError(err, ui.planError);
  }).then(function () {
    if (asked !== plan.asked) return;
    ui.planSubmit.disabled = false;
    ui.planSubmit.textContent = 'Show what to order';
  });
}

function downloadPlan() {
  var query = currentPlanQuery();
  if (!query) return;
  ui.planDownload.disabled = true;
  client.downloadPlan(query).catch(function (err) { showError(err, ui.planError); }).then(function () {
    ui.planDownload.disabled = false;
  });
}

/** The table of the latest plan, filtered and sorted as asked (order-now rows first). */
function renderPlanRows() {
  if (!plan.answer) return;
  var head = el('tr');
  PLAN_COLUMNS.forEach(function (c) {
    var key = c[0];
    var sorted = planSortState(plan.sort, key);
    var th = el('th', { scope: 'col', 'aria-sort': sorted });
    var button = el('button', { type: 'button', 'data-testid': 'plan-sort-' + key },
      c[1] + SORT_MARK[sorted]);
    button.addEventListener('click', function () { plan.sort = nextPlanSort(plan.sort, key); renderPlanRows(); });
    th.appendChild(button);
    head.appendChild(th);
  });
  ui.planTable.tHead.replaceChildren(head);
  var rows = planRows(plan.answer.rows, { filter: ui.planFilter.value, sort: plan.sort });
  var body = [];
  rows.forEach(function (r, i) {
    var tr = el('tr', { 'data-testid': 'plan-row', 'class': r.order_now ? 'order-now' : null });
    body.push(tr);
    var steps = explanationLines(r.explanation);
    var key = planRowKey(r);
    var open = plan.explained.has(key);
    PLAN_COLUMNS.forEach(function (c) {
      var td = el('td', { 'class': PLAN_TEXT_COLUMNS.has(c[0]) ? null : 'num' }, formatPlanCell(c[0], r[c[0]]));
      if (c[0] === 'suggested_order_qty' && steps.length) td.appendChild(explainButton(r, key, open, 'plan-why-' + i));
      tr.appendChild(td);
    });
    if (!steps.length) return;
    var cell = el('td', { colspan: String(PLAN_COLUMNS.length) });
    cell.appendChild(el('p', { 'class': 'explanation-title' }, EXPLANATION_TITLE + ':'));
    var list = el('ol', { 'class': 'explanation' });
    steps.forEach(function (text) { list.appendChild(el('li', null, text)); });
    cell.appendChild(list);
    var detail = el('tr', { id: 'plan-why-' + i, 'class': 'plan-explanation', 'data-testid': 'plan-explanation' });
    detail.hidden = !open;
    detail.appendChild(cell);
    body.push(detail);
  });
  ui.planTable.tBodies[0].replaceChildren.apply(ui.planTable.tBodies[0], body);
  ui.planEmpty.hidden = rows.length > 0;
}

/** A plan row's "Why?" toggle: shows or hides the row of its explanation under it (kept open
 * across sorting and filtering, by the row's series). */
function explainButton(row, key, open, controls) {
  var button = el('button', { type: 'button', 'class': 'why', 'data-testid': 'plan-why',
    'aria-expanded': String(open), 'aria-controls': controls, 'aria-label': explainLabel(row) }, EXPLAIN_BUTTON);
  button.addEventListener('click', function () { // in place: the button keeps the focus
    var opened = !plan.explained.has(key);
    if (opened) plan.explained.add(key); else plan.explained.delete(key);
    button.setAttribute('aria-expanded', String(opened));
    document.getElementById(controls).hidden = !opened;
  });
  return button;
}

// When a token is needed, the PNG link is fetched with the header and opened as a blob.
function openPlot(ev) {
  if (!token()) return; // a plain link works
  ev.preventDefault();
  var href = ui.plotLink.href;
  var win = window.open('', '_blank');
  client.blob(href).then(function (blob) {
    var u = URL.createObjectURL(blob);
    if (win) win.location.href = u; else window.location.href = u;
  }).catch(function (err) {
    if (win) win.close();
    showError(err, ui.forecastError);
  });
}

// ---- chart (inline SVG)
var SVGNS = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs, text) {
  var n = document.createElementNS(SVGNS, tag);
  if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]);
  if (text !== undefined) n.textContent = text;
  return n;
}
function parseDate(s) {
  var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(s));
  if (m) return Date.UTC(+m[1], +m[2] - 1, +m[3]);
  var t = Date.parse(s);
  return isNaN(t) ? null : t;
}
function niceTicks(max, count) {
  if (!(max > 0)) return { max: 1, ticks: [0, 1] };
  var raw = max / count;
  var mag = Math.pow(10, Math.floor(Math.log10(raw)));
  var step = [1, 2, 2.5, 5, 10].map(function (f) { return f * mag; }).filter(function (s) { return s >= raw; })[0];
  var top = Math.ceil(max / step) * step, ticks = [];
  for (var v = 0; v <= top + step / 2; v += step) ticks.push(+v.toPrecision(12));
  return { max: top, ticks: ticks };
}
function fmtDate(t, withYear) {
  var d = new Date(t);
  return d.toLocaleDateString(undefined, withYear ? { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' } : { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

var chartState = null;
function drawChart(resp) {
  var svg = ui.chart;
  svg.textContent = '';
  ui.tooltip.hidden = true;
  var fc = (resp.forecast || []).filter(function (p) { return parseDate(p.date) !== null; });
  var histAll = (resp.history || []).filter(function (p) { return parseDate(p.date) !== null; });
  var hist = histAll.slice(-historyToChart(fc.length));
  var inv = resp.inventory || {};
  var width = Math.max(300, Math.round(ui.chartWrap.clientWidth || 800));
  var height = Math.round(Math.max(240, Math.min(400, width * 0.5)));
  var narrow = width < 520;
  var m = { top: 16, right: narrow ? 44 : 60, bottom: 34, left: narrow ? 40 : 52 };
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.appendChild(svgEl('title', null, 'Forecast chart'));
  if (!fc.length && !hist.length) {
    svg.appendChild(svgEl('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'No data to draw.'));
    chartState = null;
    return;
  }

  // rows keyed by date: history and forecast on one time axis
  var rowsByT = {};
  hist.forEach(function (p) { var t = parseDate(p.date); (rowsByT[t] = rowsByT[t] || { t: t, date: p.date }).quantity = p.quantity; });
  fc.forEach(function (p) {
    var t = parseDate(p.date), r = (rowsByT[t] = rowsByT[t] || { t: t, date: p.date });
    r.yhat = p.yhat; r.lower = p.yhat_lower; r.upper = p.yhat_upper; r.prophet = p.prophet; r.lstm = p.lstm;
  });
  var rows = Object.keys(rowsByT).map(function (k) { return rowsByT[k]; }).sort(function (a, b) { return a.t - b.t; });

  // projected stock: on hand at the last history date, minus cumulative forecast demand
  var onHand = typeof inv.on_hand === 'number' ? inv.on_hand : null;
  if (onHand !== null && fc.length) {
    var stock = onHand;
    var lastHist = hist.length ? parseDate(hist[hist.length - 1].date) : null;
    if (lastHist !== null && rowsByT[lastHist]) rowsByT[lastHist].stock = onHand;
    fc.forEach(function (p) { stock = Math.max(0, stock - (typeof p.yhat === 'number' ? p.yhat : 0)); rowsByT[parseDate(p.date)].stock = stock; });
  }
  var rop = typeof inv.reorder_point === 'number' ? inv.reorder_point : null;

  var t0 = rows[0].t, t1 = rows[rows.length - 1].t;
  if (t1 === t0) t1 = t0 + 86400000;
  var demandMax = 0, stockMax = 0;
  rows.forEach(function (r) {
    [r.quantity, r.yhat, r.upper].forEach(function (v) { if (typeof v === 'number' && v > demandMax) demandMax = v; });
    if (typeof r.stock === 'number' && r.stock > stockMax) stockMax = r.stock;
  });
  if (rop !== null && rop > stockMax) stockMax = rop;
  if (onHand !== null && onHand > stockMax) stockMax = onHand;
  var yL = niceTicks(demandMax * 1.05, 5);
  var hasRight = rop !== null || onHand !== null;
  var yR = niceTicks(stockMax * 1.05, 5);
  var pw = width - m.left - m.right, ph = height - m.top - m.bottom;
  function x(t) { return m.left + (t - t0) / (t1 - t0) * pw; }
  function yl(v) { return m.top + ph - v / yL.max * ph; }
  function yr(v) { return m.top + ph - v / yR.max * ph; }

  // grid + axes
  var g = svgEl('g');
  yL.ticks.forEach(function (v) {
    g.appendChild(svgEl('line', { 'class': 'grid-line', x1: m.left, x2: m.left + pw, y1: yl(v), y2: yl(v) }));
    g.appendChild(svgEl('text', { x: m.left - 6, y: yl(v) + 4, 'text-anchor': 'end' }, formatNumber(v)));
  });
  if (hasRight) yR.ticks.forEach(function (v) {
    g.appendChild(svgEl('text', { x: m.left + pw + 6, y: yr(v) + 4, 'text-anchor': 'start' }, formatNumber(v)));
  });
  var nx = Math.max(2, Math.floor(pw / (narrow ? 80 : 110)));
  var spanYears = new Date(t0).getUTCFullYear() !== new Date(t1).getUTCFullYear();
  for (var i = 0; i <= nx; i++) {
    var tt = t0 + (t1 - t0) * i / nx;
    g.appendChild(svgEl('line', { 'class': 'axis', x1: x(tt), x2: x(tt), y1: m.top + ph, y2: m.top + ph + 4 }));
    g.appendChild(svgEl('text', { x: x(tt), y: m.top + ph + 18, 'text-anchor': i === 0 ? 'start' : i === nx ? 'end' : 'middle' }, fmtDate(tt, spanYears && (i === 0 || i === nx))));
  }
  g.appendChild(svgEl('line', { 'class': 'axis', x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph }));
  g.appendChild(svgEl('text', { x: m.left, y: 11, 'text-anchor': 'start' }, 'demand / ' + periodName(resp.frequency)));
  if (hasRight) g.appendChild(svgEl('text', { x: m.left + pw, y: 11, 'text-anchor': 'end' }, 'stock (units)'));
  svg.appendChild(g);

  function pathOf(points) {
    return points.map(function (p, k) { return (k ? 'L' : 'M') + p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('');
  }
  // interval band
  var bandRows = rows.filter(function (r) { return typeof r.lower === 'number' && typeof r.upper === 'number'; });
  if (bandRows.length) {
    var up = bandRows.map(function (r) { return [x(r.t), yl(Math.max(0, r.upper))]; });
    var lo = bandRows.slice().reverse().map(function (r) { return [x(r.t), yl(Math.max(0, r.lower))]; });
    svg.appendChild(svgEl('path', { 'class': 'band', 'data-testid': 'chart-band', d: pathOf(up.concat(lo)) + 'Z' }));
  }
  // today divider
  if (hist.length && fc.length) {
    var tl = parseDate(hist[hist.length - 1].date);
    svg.appendChild(svgEl('line', { 'class': 'today', x1: x(tl), x2: x(tl), y1: m.top, y2: m.top + ph }));
  }
  var histRows = rows.filter(function (r) { return typeof r.quantity === 'number'; });
  if (histRows.length) svg.appendChild(svgEl('path', { 'class': 'history', 'data-testid': 'chart-history', d: pathOf(histRows.map(function (r) { return [x(r.t), yl(r.quantity)]; })) }));
  var fcRows = rows.filter(function (r) { return typeof r.yhat === 'number'; });
  if (fcRows.length) svg.appendChild(svgEl('path', { 'class': 'forecast', 'data-testid': 'chart-forecast', d: pathOf(fcRows.map(function (r) { return [x(r.t), yl(Math.max(0, r.yhat))]; })) }));
  var stockRows = rows.filter(function (r) { return typeof r.stock === 'number'; });
  if (stockRows.length > 1) svg.appendChild(svgEl('path', { 'class': 'stock', 'data-testid': 'chart-stock', d: pathOf(stockRows.map(function (r) { return [x(r.t), yr(r.stock)]; })) }));
  if (rop !== null) {
    svg.appendChild(svgEl('line', { 'class': 'rop', 'data-testid': 'chart-reorder-point', x1: m.left, x2: m.left + pw, y1: yr(rop), y2: yr(rop) }));
    svg.appendChild(svgEl('text', { 'class': 'rop-label', x: m.left + pw - 4, y: yr(rop) - 5, 'text-anchor': 'end' }, 'reorder point ' + formatNumber(rop)));
  }
  if (histAll.length > hist.length) {
    svg.appendChild(svgEl('text', { x: m.left + 4, y: m.top + 12 }, 'last ' + hist.length + ' of ' + histAll.length + ' history points'));
  }

  // hover layer
  var cursor = svgEl('line', { 'class': 'cursor', y1: m.top, y2: m.top + ph, visibility: 'hidden' });
  var dotH = svgEl('circle', { 'class': 'dot-h', r: 3.5, visibility: 'hidden' });
  var dotF = svgEl('circle', { 'class': 'dot-f', r: 3.5, visibility: 'hidden' });
  var dotS = svgEl('circle', { 'class': 'dot-s', r: 3, visibility: 'hidden' });
  svg.appendChild(cursor); svg.appendChild(dotH); svg.appendChild(dotF); svg.appendChild(dotS);
  var overlay = svgEl('rect', { x: m.left, y: m.top, width: pw, height: ph, fill: 'transparent', 'data-testid': 'chart-overlay' });
  svg.appendChild(overlay);
  chartState = { rows: rows, x: x, yl: yl, yr: yr, m: m, pw: pw, ph: ph, width: width, cursor: cursor, dotH: dotH, dotF: dotF, dotS: dotS, index: null, resp: resp };

  function nearest(px) {
    var best = 0, bd = Infinity;
    for (var k = 0; k < rows.length; k++) { var d = Math.abs(x(rows[k].t) - px); if (d < bd) { bd = d; best = k; } }
    return best;
  }
  overlay.addEventListener('pointermove', function (e) {
    var rect = svg.getBoundingClientRect();
    var scale = width / (rect.width || width);
    showPoint(nearest((e.clientX - rect.left) * scale));
  });
  overlay.addEventListener('pointerleave', hidePoint);
}

function showPoint(k) {
  var s = chartState;
  if (!s || !s.rows.length) return;
  k = Math.max(0, Math.min(s.rows.length - 1, k));
  s.index = k;
  var r = s.rows[k];
  var cx = s.x(r.t);
  s.cursor.setAttribute('x1', cx); s.cursor.setAttribute('x2', cx); s.cursor.setAttribute('visibility', 'visible');
  function dot(d, v, scale) {
    if (typeof v === 'number') { d.setAttribute('cx', cx); d.setAttribute('cy', scale(Math.max(0, v))); d.setAttribute('visibility', 'visible'); }
    else d.setAttribute('visibility', 'hidden');
  }
  dot(s.dotH, r.quantity, s.yl); dot(s.dotF, r.yhat, s.yl); dot(s.dotS, r.stock, s.yr);
  var lines = [fmtDate(r.t, true)];
  if (typeof r.quantity === 'number') lines.push('Actual: ' + formatNumber(r.quantity));
  if (typeof r.yhat === 'number') lines.push('Forecast: ' + formatNumber(r.yhat) + (typeof r.lower === 'number' ? ' (' + formatNumber(r.lower) + ' – ' + formatNumber(r.upper) + ')' : ''));
  if (typeof r.prophet === 'number' || typeof r.lstm === 'number') lines.push('Prophet ' + formatNumber(r.prophet) + ' · LSTM ' + formatNumber(r.lstm));
  if (typeof r.stock === 'number') lines.push('Projected stock: ' + formatNumber(r.stock));
  var inv = s.resp.inventory || {};
  if (typeof inv.reorder_point === 'number') lines.push('Reorder point: ' + formatNumber(inv.reorder_point));
  ui.tooltip.textContent = '';
  lines.forEach(function (l, i) { if (i) ui.tooltip.appendChild(document.createElement('br')); ui.tooltip.appendChild(document.createTextNode(l)); });
  ui.tooltip.hidden = false;
  var rect = ui.chart.getBoundingClientRect();
  var scale = (rect.width || s.width) / s.width;
  var left = cx * scale + 12;
  var tw = ui.tooltip.offsetWidth;
  if (left + tw > (rect.width || s.width)) left = cx * scale - tw - 12;
  ui.tooltip.style.left = Math.max(0, left) + 'px';
  ui.tooltip.style.top = (s.m.top * scale + 4) + 'px';
}
function hidePoint() {
  var s = chartState;
  ui.tooltip.hidden = true;
  if (!s) return;
  [s.cursor, s.dotH, s.dotF, s.dotS].forEach(function (n) { n.setAttribute('visibility', 'hidden'); });
}
function chartKey(e) {
  var s = chartState;
  if (!s) return;
  var k = s.index === null ? s.rows.length - 1 : s.index;
  var firstFc = s.rows.findIndex(function (r) { return typeof r.yhat === 'number'; });
  if (e.key === 'ArrowLeft') k -= e.shiftKey ? 7 : 1;
  else if (e.key === 'ArrowRight') k += e.shiftKey ? 7 : 1;
  else if (e.key === 'Home') k = 0;
  else if (e.key === 'End') k = s.rows.length - 1;
  else if (e.key === 'Escape') { hidePoint(); return; }
  else return;
  e.preventDefault();
  if (s.index === null && e.key !== 'Home' && e.key !== 'End' && firstFc >= 0) k = firstFc;
  showPoint(k);
}

// ---------------------------------------------------------------- wiring
function init() {
  ['server-status', 'token-panel', 'token-form', 'token-input', 'token-clear', 'token-state', 'upload-form', 'drop-zone',
   'file-input', 'file-name', 'opt-weights', 'opt-skip', 'opt-last', 'upload-button', 'upload-progress-wrap', 'upload-progress',
   'upload-progress-text', 'upload-summary', 'error-box', 'error-text', 'error-table-wrap', 'error-table', 'error-more',
   'training-section', 'job-id', 'job-status', 'elapsed', 'cancel-button', 'connection-status', 'stage-list', 'stage-message',
   'overall-progress', 'overall-progress-text', 'epoch-block', 'epoch-text', 'epoch-loss', 'epoch-progress', 'event-log',
   'event-count', 'result-section', 'model-version', 'accuracy-summary', 'metrics-table', 'forecast-model', 'forecast-form',
   'fc-product', 'fc-store', 'fc-category', 'fc-days', 'fc-service-level', 'fc-lead-time', 'fc-on-hand', 'fc-lead-time-std',
   'fc-review-period', 'fc-ordering-cost', 'fc-holding-cost', 'fc-cover-days', 'fields-hint', 'series-status', 'bounds-status', 'forecast-submit',
   'forecast-error', 'forecast-output', 'forecast-title-line', 'order-banner', 'chart-wrap', 'forecast-chart', 'chart-tooltip',
   'inventory-metrics', 'inventory-explanation', 'inventory-explanation-title', 'inventory-explanation-steps', 'warnings-list', 'plot-link', 'forecast-table', 'accuracy-reading', 'accuracy-error', 'accuracy-body',
   'accuracy-version', 'accuracy-chart', 'accuracy-scores', 'accuracy-table', 'simulate-submit', 'simulation-error',
   'simulation-body', 'simulation-reading', 'simulation-table', 'simulation-chart', 'plan-panel', 'plan-submit',
   'plan-download', 'plan-error', 'plan-body', 'plan-reading', 'plan-filter', 'plan-table', 'plan-empty'
  ].forEach(function (id) {
    var key = id.replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); });
    ui[key] = $(id);
  });
  ui.connection = ui.connectionStatus;
  ui.chart = ui.forecastChart;
  ui.tooltip = ui.chartTooltip;
  ui.inventory = ui.inventoryMetrics;
  ui.warnings = ui.warningsList;
  ui.inventoryExplanationTitle.textContent = EXPLANATION_TITLE;
  ui.fieldsHint.textContent = BLANK_FIELDS_HINT;

  STAGES.forEach(function (s) { ui.stageList.appendChild(el('li', { 'data-stage': s, 'data-state': 'pending', 'data-testid': 'stage-' + s }, STAGE_LABELS[s])); });

  // token
  ui.tokenInput.value = token();
  updateTokenState();
  if (!token() && params.get('token')) { /* never read tokens from the URL: they leak into logs */ }
  ui.tokenForm.addEventListener('submit', function (e) {
    e.preventDefault();
    setToken(ui.tokenInput.value.trim());
    updateTokenState();
    refreshHealth();
  });
  ui.tokenClear.addEventListener('click', function () {
    ui.tokenInput.value = '';
    setToken('');
    updateTokenState();
    refreshHealth();
  });

  // file selection, drag and drop
  ui.fileInput.addEventListener('change', function () { pickFile(ui.fileInput.files && ui.fileInput.files[0]); });
  ['dragenter', 'dragover'].forEach(function (t) {
    ui.dropZone.addEventListener(t, function (e) { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy'; ui.dropZone.classList.add('dragover'); });
  });
  ['dragleave', 'dragend'].forEach(function (t) { ui.dropZone.addEventListener(t, function () { ui.dropZone.classList.remove('dragover'); }); });
  ui.dropZone.addEventListener('drop', function (e) {
    e.preventDefault();
    ui.dropZone.classList.remove('dragover');
    var files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) { showError(new ApiError(0, 'no_file', 'Nothing usable was dropped: drop a CSV file.')); return; }
    if (files.length > 1) { showError(new ApiError(0, 'too_many_files', 'Drop one CSV file at a time.')); return; }
    try { ui.fileInput.files = files; } catch (err) { /* older browsers: keep our own reference */ }
    pickFile(files[0]);
  });
  // a file dropped outside the zone must not navigate away from the page
  window.addEventListener('dragover', function (e) { e.preventDefault(); });
  window.addEventListener('drop', function (e) { if (!ui.dropZone.contains(e.target)) e.preventDefault(); });
  ui.uploadForm.addEventListener('submit', startUpload);
  ui.cancelButton.addEventListener('click', cancelJob);

  // forecast
  ui.forecastForm.addEventListener('submit', submitForecast);
  ui.fcStore.addEventListener('change', filterProducts);
  ui.fcCategory.addEventListener('change', filterProducts);
  ui.plotLink.addEventListener('click', openPlot);
  ui.simulateSubmit.addEventListener('click', submitSimulation);
  ui.planSubmit.addEventListener('click', submitPlan);
  ui.planDownload.addEventListener('click', downloadPlan);
  ui.planFilter.addEventListener('input', renderPlanRows);
  ui.chart.addEventListener('keydown', chartKey);
  ui.chart.addEventListener('blur', hidePoint);
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (lastForecast && !ui.forecastOutput.hidden) drawChart(lastForecast); }, 150);
  });

  window.addEventListener('unhandledrejection', function (e) {
    showError(new ApiError(0, 'unexpected', 'Unexpected error: ' + (e.reason && e.reason.message ? e.reason.message : String(e.reason))));
  });

  refreshHealth();
}

// exposed for debugging and tests
window.restockRetrain = { client: client, state: function () { return { job: job, health: health, series: seriesItems.length }; } };

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
