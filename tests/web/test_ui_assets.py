"""The plain page needs no build: every file it loads, and every module those import, is
served as it is checked in (a clone without node serves the whole UI)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from flask.testing import FlaskClient

TYPES = {".js": "text/javascript", ".css": "text/css"}


def test_the_page_and_everything_it_imports_is_served(client: FlaskClient) -> None:
    page = client.get("/retrain.html").get_data(as_text=True)
    assert re.search(r'<script type="module" src="/static/retrain.js">', page)
    pending = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.mimetype == TYPES[path[path.rfind("."):]], (path, answer.mimetype)
        if path.endswith(".js"):  # static imports, relative to the module
            text = answer.get_data(as_text=True)
            pending += [urljoin(path, spec) for spec in
                        re.findall(r"""^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]""",
                                   text, re.MULTILINE)]
    assert {"/static/retrain.js", "/static/client.js", "/static/retrain.css"} <= seen, seen
