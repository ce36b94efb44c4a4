import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import RetrainModel from '../src/index.js';
import './demo.css';

// API base URL: ?api=https://host:port, else this page's origin.
const params = new URLSearchParams(window.location.search);
const apiBaseUrl = params.get('api') || window.location.origin;
const showForecast = params.get('forecast') !== '0';
const TOKEN_KEY = 'restock.token';
const readToken = () => { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; } };

function Demo() {
  const [token, setToken] = useState(readToken);
  const [draft, setDraft] = useState(token);
  const [events, setEvents] = useState([]);
  const note = (text) => setEvents((e) => [...e.slice(-4), `${new Date().toLocaleTimeString()} ${text}`]);
  const saveToken = (e) => {
    e.preventDefault();
    const t = draft.trim();
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage disabled */ }
    setToken(t);
  };
  return (
    <>
      <header className="demo-top">
        <div>
          <h1>RetrainModel demo</h1>
          <p>API: <code data-testid="demo-api">{apiBaseUrl}</code></p>
        </div>
        <form onSubmit={saveToken} data-testid="token-form">
          <label htmlFor="demo-token">Bearer token (this tab only)
            <input id="demo-token" type="password" autoComplete="off" value={draft} onChange={(e) => setDraft(e.target.value)} data-testid="token-input" />
          </label>
          <button type="submit" data-testid="token-save">Save</button>
        </form>
      </header>
      <main>
        <RetrainModel
          apiBaseUrl={apiBaseUrl}
          token={token}
          showForecast={showForecast}
          onComplete={(version) => note(`onComplete: ${version}`)}
          onError={(err) => note(`onError: ${err.code || err.name}: ${err.message}`)}
        />
        <ul className="demo-events" data-testid="demo-callbacks" aria-label="Component callbacks">
          {events.map((e, i) => <li key={i}>{e}</li>)}
        </ul>
      </main>
    </>
  );
}

createRoot(document.getElementById('root')).render(<StrictMode><Demo /></StrictMode>);
