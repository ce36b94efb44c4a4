"""One answer to SQLite refusing a new file's set-up because another process sets it up too.

Several processes opening a new SQLite file at once (web workers booting, a CLI beside a
server) each turn it to WAL, which needs the file to itself; SQLite may refuse one of them
"database is locked" at once, without waiting out its busy timeout. Every such set-up here
(the migrations, the rate-limit file) is idempotent, so it is simply tried again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Callable, TypeVar

import sqlalchemy as sa

#: tries before the refusal is raised
LOCKED_ATTEMPTS = 5
T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_while_locked(step: Callable[[], T]) -> T:
    """``step()``, tried again (waiting a little longer each time) while SQLite refuses it
    with "database is locked"; any other error, or the last refusal, is raised."""
    for attempt in range(1, LOCKED_ATTEMPTS):
        try:
            return step()
        except (sqlite3.OperationalError, sa.exc.OperationalError) as error:
            if "database is locked" not in str(error):
                raise
            log.info("the new database was locked by another process; trying again")
            time.sleep(0.2 * attempt)
    return step()
