import { useCallback, useEffect, useId, useMemo, useRef, useState } from 'react';
import {
  ApiError, MEMBER_LABELS, STAGES, STAGE_LABELS, createClient, describeError, totalEpochs,
} from './api.js';
import ForecastView from './ForecastView.jsx';
import { ErrorPanel, ProgressBar } from './parts.jsx';
import './RetrainModel.css';

const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
const fmtElapsed = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
};
const fmt3 = (v) => (typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString(undefined, { maximumFractionDigits: 3 }) : '–');
const MAX_LOG = 1000;

function StageList({ stage, failed, finished }) {
  const idx = stage ? STAGES.indexOf(stage) : -1;
  return (
    <ol className="rr-stages" data-testid="stage-list" aria-label="Training stages">
      {STAGES.map((s, i) => {
        let state = 'pending';
        if (finished || stage === 'done') state = 'done';
        else if (idx >= 0 && i < idx) state = 'done';
        else if (i === idx) state = failed ? 'failed' : 'current';
        return (
          <li
            key={s}
            data-stage={s}
            data-state={state}
            data-testid={`stage-${s}`}
            aria-current={state === 'current' || state === 'failed' ? 'step' : undefined}
          >
            {STAGE_LABELS[s]}
            <span className="rr-sr-only"> ({state === 'current' ? 'in progress' : state})</span>
          </li>
        );
      })}
    </ol>
  );
}

function MetricsResult({ result }) {
  const m = result.metrics;
  if (!m) return <p data-testid="accuracy-summary">The job finished; its backtest metrics were not in the stream.</p>;
  const keys = ['ensemble', 'seasonal_naive', 'prophet', 'lstm'].filter((k) => m[k]);
  for (const k of Object.keys(m)) if (!keys.includes(k) && m[k] && typeof m[k] === 'object') keys.push(k);
  let best = null;
  for (const k of keys) if (typeof m[k].mase === 'number' && (best === null || m[k].mase < m[best].mase)) best = k;
  const e = m.ensemble?.mase;
  const n = m.seasonal_naive?.mase;
  let summary;
  let cls = '';
  if (typeof e === 'number' && typeof n === 'number') {
    const rel = n > 0 ? Math.abs(1 - e / n) * 100 : null;
    cls = e < n ? 'rr-good' : 'rr-bad';
    summary = `Backtest MASE: ensemble ${fmt3(e)} vs seasonal naive ${fmt3(n)} — ${e === n ? 'no better than the naive baseline.'
      : `${rel !== null ? `${rel.toFixed(1)}% ` : ''}${e < n ? 'lower' : 'higher'} error than the naive baseline.`}`;
  } else {
    summary = `Ensemble MASE: ${fmt3(e)}; seasonal naive MASE: ${fmt3(n)}.`;
  }
  return (
    <>
      <p className={`rr-accuracy ${cls}`} data-testid="accuracy-summary">{summary}</p>
      <div className="rr-table-wrap">
        <table data-testid="metrics-table">
          <caption>Backtest accuracy on the held-out last horizon (lower is better; bias closest to 0)</caption>
          <thead><tr><th scope="col">Model</th><th scope="col">MASE</th><th scope="col">WAPE</th><th scope="col">sMAPE</th><th scope="col">Bias</th></tr></thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k} data-model={k} className={k === best ? 'rr-best' : undefined}>
                <th scope="row">{MEMBER_LABELS[k] || k}{k === best ? ' (best)' : ''}</th>
                {['mase', 'wape', 'smape', 'bias'].map((c) => (
                  <td key={c} className="rr-num" data-testid={`metric-${k}-${c}`}>{fmt3(m[k][c])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/**
 * Upload a sales CSV to a restock server, follow the retrain live, show the new model's
 * backtest accuracy and (with `showForecast`) a forecast with inventory metrics.
 */
export default function RetrainModel({
  apiBaseUrl = '',
  token = '',
  onComplete,
  onError,
  showForecast = false,
  className = '',
  streamOptions,
}) {
  const uid = useId();
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const cbRef = useRef({ onComplete, onError });
  cbRef.current = { onComplete, onError };
  const client = useMemo(() => createClient({ apiBaseUrl, getToken: () => tokenRef.current }), [apiBaseUrl]);

  const [file, setFile] = useState(null);
  const [weights, setWeights] = useState('auto');
  const [skipBad, setSkipBad] = useState(false);
  const [lastDup, setLastDup] = useState(false);
  const [dragOver, setDragOver] = useState(false);

  const [phase, setPhase] = useState('idle'); // idle | uploading | training | succeeded | failed | cancelled
  const [uploadProgress, setUploadProgress] = useState(null);
  const [uploadSummary, setUploadSummary] = useState(null);
  const [error, setError] = useState(null);
  const [job, setJob] = useState(null); // {id, statusUrl, eventsUrl}
  const [jobStatus, setJobStatus] = useState(null);
  const [progress, setProgress] = useState({ stage: null, progress: 0, message: 'Waiting for the worker…' });
  const [epoch, setEpoch] = useState(null);
  const [log, setLog] = useState([]);
  const [connection, setConnection] = useState({ text: '', bad: false });
  const [elapsed, setElapsed] = useState(0);
  const [result, setResult] = useState(null);
  const [cancelling, setCancelling] = useState(false);
  const [modelVersion, setModelVersion] = useState(null);

  const streamRef = useRef(null);
  const uploadRef = useRef(null);
  const startRef = useRef(0);
  const finishedRef = useRef(false);
  const stageRef = useRef(null);
  const fileInputRef = useRef(null);

  const reportError = useCallback((err) => {
    setError(err);
    try { cbRef.current.onError?.(err); } catch { /* a failing callback must not break the UI */ }
  }, []);

  // health: is there a model already? (lets the forecast view work without a retrain)
  const [health, setHealth] = useState({ text: 'Checking the server…', bad: false });
  useEffect(() => {
    let alive = true;
    client.json('GET', '/').then((h) => {
      if (!alive) return;
      setModelVersion(h?.model_version || null);
      setHealth({
        text: [`Server ${h?.status || 'ok'}`, h?.model_version ? `active model ${h.model_version}` : 'no model yet',
          h?.rows != null ? `${Number(h.rows).toLocaleString()} rows` : null,
          h?.series != null ? `${Number(h.series).toLocaleString()} series` : null].filter(Boolean).join(' · '),
        bad: false,
      });
    }, (err) => { if (alive) setHealth({ text: describeError(err), bad: true }); });
    return () => { alive = false; };
  }, [client, token, result]);

  // stop the stream and any upload when unmounted
  useEffect(() => () => { streamRef.current?.stop(); uploadRef.current?.abort(); }, []);

  // elapsed clock while training
  useEffect(() => {
    if (phase !== 'training') return undefined;
    const t = setInterval(() => setElapsed(Date.now() - startRef.current), 1000);
    return () => clearInterval(t);
  }, [phase]);

  const addLog = useCallback((id, text, kind) => {
    setLog((l) => {
      const next = [...l, { id, text, kind, key: `${l.length}-${id}` }];
      return next.length > MAX_LOG ? next.slice(-MAX_LOG) : next;
    });
  }, []);

  const finish = useCallback((status, err, done) => {
    if (finishedRef.current) return;
    finishedRef.current = true;
    streamRef.current?.stop();
    setElapsed(Date.now() - startRef.current);
    setJobStatus(status);
    setPhase(status);
    setCancelling(false);
    setConnection({ text: '', bad: false });
    if (status === 'succeeded') {
      setProgress((p) => ({ ...p, stage: 'done', progress: 1, message: 'Training finished.' }));
      setResult(done || {});
      if (done?.model_version) setModelVersion(done.model_version);
      try { cbRef.current.onComplete?.(done?.model_version ?? null); } catch { /* ignore */ }
    } else if (status === 'cancelled') {
      setProgress((p) => ({ ...p, message: 'Training cancelled. The active model did not change.' }));
    } else {
      setProgress((p) => ({ ...p, message: 'Training stopped.' }));
      reportError(err);
    }
  }, [reportError]);

  const onEvent = useCallback((type, data, id) => {
    data = data || {};
    if (type === 'progress') {
      if (finishedRef.current) return;
      setJobStatus((s) => (s === 'cancelling' ? s : 'running'));
      if (data.stage) stageRef.current = data.stage;
      setProgress((p) => ({
        stage: data.stage || p.stage,
        progress: typeof data.progress === 'number' ? data.progress : p.progress,
        message: `${STAGE_LABELS[data.stage] || data.stage || ''}${data.stage ? ': ' : ''}${data.message || ''}`,
      }));
      const epochs = totalEpochs(data);
      if (data.epoch !== undefined && data.epoch !== null) {
        setEpoch({ epoch: data.epoch, epochs, loss: data.loss ?? null, valLoss: data.val_loss ?? null });
      }
      const ep = data.epoch != null && !/epoch/i.test(data.message || '')
        ? ` (epoch ${data.epoch}${epochs ? `/${epochs}` : ''}${typeof data.loss === 'number' ? `, loss ${data.loss.toPrecision(4)}` : ''})` : '';
      addLog(id, `[${data.stage || '?'}] ${typeof data.progress === 'number' ? `${Math.round(data.progress * 100)}% ` : ''}${data.message || ''}${ep}`);
    } else if (type === 'done') {
      addLog(id, `[done] model ${data.model_version || '?'}`, 'ok');
      finish('succeeded', null, data);
    } else if (type === 'error') {
      addLog(id, `[error] ${data.code ? `${data.code}: ` : ''}${data.message || ''}`, 'bad');
      if (data.code === 'cancelled') finish('cancelled');
      else {
        finish('failed', new ApiError(0, data.code || 'training_failed',
          `Training failed${stageRef.current ? ` during "${stageRef.current}"` : ''}: ${data.message || 'no message'}`));
      }
    } else {
      addLog(id, `[${type}] ${JSON.stringify(data)}`);
    }
  }, [addLog, finish]);

  const startJob = useCallback((resp) => {
    streamRef.current?.stop();
    const id = resp.job_id;
    const j = {
      id,
      statusUrl: resp.status_url || `/jobs/${encodeURIComponent(id)}`,
      eventsUrl: resp.events_url || `/jobs/${encodeURIComponent(id)}/events`,
    };
    finishedRef.current = false;
    stageRef.current = null;
    startRef.current = Date.now();
    setElapsed(0);
    setJob(j);
    setJobStatus(resp.status || 'queued');
    setProgress({ stage: null, progress: 0, message: 'Waiting for the worker…' });
    setEpoch(null);
    setLog([]);
    setResult(null);
    setPhase('training');
    streamRef.current = client.followJob({
      ...streamOptions,
      eventsUrl: j.eventsUrl,
      statusUrl: j.statusUrl,
      onEvent,
      onConnection: (s, info) => {
        if (s === 'open') setConnection({ text: info.lastId !== null ? `Reconnected; resumed after event ${info.lastId}.` : 'Connected to the training stream.', bad: false });
        else if (s === 'waiting') {
          setConnection({
            text: `Connection lost${info.error ? ` (${info.error.message})` : ''}. Reconnecting in ${Math.round(info.delay / 1000)} s (attempt ${info.attempt})${info.lastId !== null ? `, resuming after event ${info.lastId}` : ''}…`,
            bad: true,
          });
        } else if (s === 'reconnecting') setConnection((c) => ({ text: `Reconnecting${info.lastId !== null ? `, resuming after event ${info.lastId}` : ''}…`, bad: c.bad }));
        else setConnection({ text: 'Connecting to the training stream…', bad: false });
      },
      onFatal: (err) => finish('failed', err),
      onJobFinished: (st) => {
        addLog(null, `[status] job ${st.status} (from GET ${j.statusUrl})`);
        if (st.status === 'succeeded') finish('succeeded', null, { model_version: st.model_version, metrics: null });
        else if (st.status === 'cancelled') finish('cancelled');
        else finish('failed', new ApiError(0, st.error?.code || 'training_failed', `Training failed: ${st.error?.message || (st.error ? JSON.stringify(st.error) : 'no reason given')}`));
      },
    });
  }, [client, onEvent, finish, addLog, streamOptions]);

  const pickFile = (f) => {
    setFile(f || null);
    setError(null);
  };

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    if (!file) { reportError(new ApiError(0, 'no_file', 'Choose a CSV file first.')); fileInputRef.current?.focus(); return; }
    if (file.size === 0) { reportError(new ApiError(0, 'empty_file', `The file "${file.name}" is empty.`)); return; }
    const fields = { weights };
    if (skipBad) fields.on_error = 'skip';
    if (lastDup) fields.on_duplicate = 'last';
    setPhase('uploading');
    setUploadSummary(null);
    setUploadProgress({ fraction: 0, loaded: 0, total: file.size });
    const up = client.upload(file, fields, setUploadProgress);
    uploadRef.current = up;
    try {
      const resp = await up.promise;
      if (!resp?.job_id) throw new ApiError(202, 'bad_response', 'The server accepted the upload but returned no job id.');
      setUploadProgress({ fraction: 1, loaded: file.size, total: file.size, accepted: true });
      setUploadSummary({ name: file.name, ...(resp.upload || {}) });
      startJob(resp);
    } catch (err) {
      // the server answered (a 4xx/5xx): every byte was sent, the file was refused
      setUploadProgress((p) => ({ ...p, ...(err?.status ? { fraction: 1 } : {}), failed: true, rejected: !!err?.status }));
      setPhase('idle');
      reportError(err);
    } finally {
      uploadRef.current = null;
    }
  };

  const cancel = async () => {
    if (!job || finishedRef.current) return;
    setCancelling(true);
    setJobStatus('cancelling');
    try {
      const resp = await client.json('DELETE', job.statusUrl);
      addLog(null, '[cancel] requested');
      if (resp?.status === 'cancelled') finish('cancelled');
      else if (!finishedRef.current) setProgress((p) => ({ ...p, message: 'Cancelling: the job stops at its next step…' }));
    } catch (err) {
      setCancelling(false);
      if (!finishedRef.current) setJobStatus('running');
      reportError(err);
    }
  };

  const onDrop = (e) => {
    e.preventDefault();
    setDragOver(false);
    const files = e.dataTransfer?.files;
    if (!files || !files.length) { reportError(new ApiError(0, 'no_file', 'Nothing usable was dropped: drop a CSV file.')); return; }
    if (files.length > 1) { reportError(new ApiError(0, 'too_many_files', 'Drop one CSV file at a time.')); return; }
    pickFile(files[0]);
  };

  const busy = phase === 'uploading' || phase === 'training';
  const ids = { file: `${uid}-file`, weights: `${uid}-weights`, skip: `${uid}-skip`, last: `${uid}-last` };
  const up = uploadProgress;

  return (
    <div className={`restock-retrain ${className}`.trim()} data-testid="retrain-model">
      <section className="rr-card" aria-label="Upload sales data">
        <h2>Upload sales data</h2>
        <p className={`rr-server${health.bad ? ' rr-bad' : ''}`} role="status" aria-live="polite" data-testid="server-status">{health.text}</p>
        <form onSubmit={submit} noValidate data-testid="upload-form">
          <label
            htmlFor={ids.file}
            className={`rr-dropzone${dragOver ? ' rr-dragover' : ''}`}
            data-testid="drop-zone"
            onDragEnter={(e) => { e.preventDefault(); setDragOver(true); }}
            onDragOver={(e) => { e.preventDefault(); setDragOver(true); }}
            onDragLeave={() => setDragOver(false)}
            onDrop={onDrop}
          >
            <span className="rr-dz-main">Drop a CSV file here, or <span className="rr-dz-link">choose a file</span></span>
            <span className="rr-hint">Columns: date, product_id, quantity (optional store_id, category, price, on_hand)</span>
            <span className="rr-dz-file" data-testid="file-name" aria-live="polite">{file ? `${file.name} · ${fmtBytes(file.size)}` : ''}</span>
          </label>
          <input
            id={ids.file}
            ref={fileInputRef}
            className="rr-sr-only"
            type="file"
            accept=".csv,text/csv,text/plain"
            data-testid="file-input"
            onChange={(e) => pickFile(e.target.files?.[0])}
          />
          <fieldset className="rr-options">
            <legend>Options</legend>
            <div className="rr-field">
              <label htmlFor={ids.weights}>Ensemble weights</label>
              <select id={ids.weights} value={weights} onChange={(e) => setWeights(e.target.value)} data-testid="opt-weights">
                <option value="auto">auto (fitted on a backtest)</option>
                <option value="seed">seed (60% Prophet / 40% LSTM)</option>
              </select>
            </div>
            <div className="rr-check">
              <input id={ids.skip} type="checkbox" checked={skipBad} onChange={(e) => setSkipBad(e.target.checked)} data-testid="opt-skip" />
              <label htmlFor={ids.skip}>Skip bad rows (store the good ones)</label>
            </div>
            <div className="rr-check">
              <input id={ids.last} type="checkbox" checked={lastDup} onChange={(e) => setLastDup(e.target.checked)} data-testid="opt-last" />
              <label htmlFor={ids.last}>Duplicate rows in the file: last one wins</label>
            </div>
          </fieldset>
          <div className="rr-actions">
            <button type="submit" disabled={!file || busy} data-testid="upload-button">Upload and retrain</button>
          </div>
          {up && (
            <div className="rr-progress-block">
              <div className="rr-progress-label">
                <span>Upload</span>
                <span data-testid="upload-progress-text">
                  {up.rejected ? 'Rejected by the server' : up.failed ? 'Failed' : up.accepted ? 'Accepted' : up.sent ? `Sent ${fmtBytes(up.total)} · the server is checking the file…`
                    : up.fraction === null ? `${fmtBytes(up.loaded)} sent` : `${fmtBytes(up.loaded)} of ${fmtBytes(up.total)} (${Math.round(up.fraction * 100)}%)`}
                </span>
              </div>
              <ProgressBar value={up.fraction ?? 0} indeterminate={up.fraction === null && !up.failed} label="Upload progress" testId="upload-progress" variant={up.failed ? 'failed' : undefined} />
            </div>
          )}
          {uploadSummary && (
            <p className="rr-summary" data-testid="upload-summary">
              Upload accepted ({uploadSummary.name}).{' '}
              {['rows_read', 'inserted', 'updated', 'skipped'].filter((k) => uploadSummary[k] != null)
                .map((k) => `${k.replace('_', ' ')}: ${Number(uploadSummary[k]).toLocaleString()}`).join(' · ')}
            </p>
          )}
        </form>
        <ErrorPanel error={error} skipHint={!skipBad} />
      </section>

      {job && (
        <section className="rr-card" aria-label="Training" data-testid="training">
          <h2>Training</h2>
          <div className="rr-training-head">
            <p>
              <span className="rr-muted">Job</span> <code data-testid="job-id">{job.id}</code>{' · '}
              <span className={`rr-pill rr-${jobStatus}`} data-testid="job-status">{jobStatus}</span>{' · '}
              <span className="rr-muted">Elapsed</span> <span data-testid="elapsed">{fmtElapsed(elapsed)}</span>
            </p>
            {phase === 'training' && (
              <button type="button" className="rr-danger" onClick={cancel} disabled={cancelling} data-testid="cancel-button">
                Cancel training
              </button>
            )}
          </div>
          <p className={`rr-connection${connection.bad ? ' rr-bad' : ''}`} role="status" aria-live="polite" data-testid="connection-status">{connection.text}</p>
          <StageList stage={progress.stage} failed={phase === 'failed' || phase === 'cancelled'} finished={phase === 'succeeded'} />
          <div className="rr-progress-block">
            <div className="rr-progress-label">
              <span data-testid="stage-message">{progress.message}</span>
              <span data-testid="overall-progress-text">{Math.round((progress.progress || 0) * 100)}%</span>
            </div>
            <ProgressBar value={progress.progress} label="Overall training progress" testId="overall-progress" />
          </div>
          {epoch && (
            <div className="rr-progress-block" data-testid="epoch-block">
              <div className="rr-progress-label">
                <span data-testid="epoch-text">LSTM epoch {epoch.epoch}{epoch.epochs ? ` of ${epoch.epochs}` : ''}</span>
                <span data-testid="epoch-loss">
                  {[typeof epoch.loss === 'number' ? `loss ${epoch.loss.toPrecision(4)}` : null,
                    typeof epoch.valLoss === 'number' ? `val loss ${epoch.valLoss.toPrecision(4)}` : null].filter(Boolean).join(' · ')}
                </span>
              </div>
              <ProgressBar value={epoch.epochs ? epoch.epoch / epoch.epochs : 0} indeterminate={!epoch.epochs} label="LSTM epochs" testId="epoch-progress" variant="secondary" />
            </div>
          )}
          <details className="rr-log">
            <summary>Event log (<span data-testid="event-count">{log.length}</span>)</summary>
            <ol className="rr-event-log" data-testid="event-log">
              {log.map((l) => <li key={l.key} data-event-id={l.id ?? ''} className={l.kind ? `rr-${l.kind}` : undefined}>{l.text}</li>)}
            </ol>
          </details>
        </section>
      )}

      {result && (
        <section className="rr-card" aria-label="New model" data-testid="result">
          <h2>New model</h2>
          <p className="rr-version">Version <strong data-testid="model-version">{result.model_version || '(unknown)'}</strong></p>
          <MetricsResult result={result} />
        </section>
      )}

      {showForecast && (
        <ForecastView client={client} modelVersion={modelVersion} onError={(err) => { try { cbRef.current.onError?.(err); } catch { /* ignore */ } }} />
      )}
    </div>
  );
}
