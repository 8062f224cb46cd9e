"""Database connection: URL handling, engine, sessions and migrations.

With `DatabaseLimits`, no transaction outlives a database that is down or
frozen: a SIGSTOPped server accepts TCP and never answers, so neither libpq's
connect_timeout nor the server's statement_timeout ends a query already sent.
A watchdog per transaction shuts the connection's socket down at its
deadline; psycopg then fails the pending call as a lost connection and
SQLAlchemy discards that connection instead of pooling it. (Cancelling the
task instead makes psycopg ask the frozen server to cancel, for 10 s.)
After such a failure transactions fail at once, until a probe gets an answer."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import Context, ContextVar, copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.domain.errors import ClarionError, ErrorKind

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class DatabaseLimits:
    """How long a request may wait on the database; all well under Envoy's
    30 s route timeout, so a tenant gets a 503 rather than a 504 or a hang."""

    # libpq's connect_timeout, in whole seconds (libpq's minimum is 2).
    connect_seconds: int = 2
    # Waiting for a pooled connection when all are in use.
    pool_seconds: float = 2.0
    # A transaction's whole life, client side; also the server's statement_timeout.
    transaction_seconds: float = 3.0
    # While the database is unreachable, how often to try it again.
    probe_seconds: float = 0.5
    retry_after_seconds: int = 2
    # A whole API request's time with the database, across its transactions
    # (see request_budget): a signup checks, hashes, then inserts.
    request_seconds: float = 4.5


# When the running request must be answered by (loop time), if it has a budget.
_request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)


@contextmanager
def request_budget(seconds: float) -> Iterator[None]:
    """Bounds every transaction in the block by what is left of `seconds`, so
    that a request made of several answers in time even when each one alone
    would fit its own limit."""
    token = _request_deadline.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _request_deadline.reset(token)


def outside_request_budget() -> Context:
    """The current context (its trace included) without the request's
    deadline, for a task that outlives the answer. A workflow start made
    after answering inherited it: under a burst the start took longer than
    the budget, and clearing its outbox row then failed at once (1,138 of
    2,000 sends from 16 connections), leaving the sweeper to start each again."""
    context = copy_context()
    context.run(_request_deadline.set, None)
    return context


def sqlalchemy_url(database_url: str) -> str:
    """The URL with the psycopg 3 driver, whatever scheme it was given with."""
    url = make_url(database_url)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def migrate(database_url: str) -> None:
    """Brings the schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    command.upgrade(config, "head")


def create_engine(
    database_url: str, pool_size: int = 20, limits: DatabaseLimits | None = None
) -> AsyncEngine:
    """The engine of a process; `limits` bound how long a statement, a
    connect and a pool wait may take (the API servers').

    The pool keeps every connection it opens (up to `pool_size`, opened on
    demand): with 10 kept and 10 more that closed on return, a burst of 800
    single SMS opened 112 to 139 connections, each a new PostgreSQL backend
    with cold caches; kept, 33 to 47, and PostgreSQL's CPU per SMS fell
    from 5.9-7.4 ms to 4.6-5.8 ms in five interleaved pairs
    (docs/performance.md)."""
    connect_args: dict[str, object] = {}
    if limits is not None:
        statement_ms = int(limits.transaction_seconds * 1000)
        connect_args = {
            "connect_timeout": limits.connect_seconds,
            "options": f"-c statement_timeout={statement_ms}",
        }
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=limits.pool_seconds if limits else 30,
        # No pre-ping: it would wait on a frozen server before any deadline is
        # armed, and it is a round trip per checkout (3 ms of the worker's CPU
        # per SMS in bench.cpu_per_send). A dead connection fails its first
        # statement instead; SQLAlchemy then refreshes the whole pool and the
        # caller's retry (an API client's, an activity's) gets a fresh one.
        pool_pre_ping=False,
        # Errors must not print bound values: password hashes, message
        # bodies with one-time codes, phone numbers.
        hide_parameters=True,
        connect_args=connect_args,
    )


def database_unavailable(retry_after_seconds: int = 2) -> ClarionError:
    return ClarionError(
        ErrorKind.UNAVAILABLE,
        "DATABASE_UNAVAILABLE",
        "the database is not answering; nothing was changed by this request "
        "unless it is replayed with the same idempotency_key; retry shortly",
        retry_after_seconds=retry_after_seconds,
    )


def is_database_outage(error: BaseException) -> bool:
    """Errors that say the database could not serve the request (unreachable,
    frozen, overloaded), as opposed to a bug in the request."""
    return isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)) or (
        isinstance(error, exc.DBAPIError) and error.connection_invalidated
    )


def is_conflict(error: BaseException) -> bool:
    """A uniqueness or reference constraint refused the write: two requests
    raced for the same resource. A request-level check should have caught it
    first; this is the backstop, answered as a conflict, not an error."""
    return isinstance(error, exc.IntegrityError)


def conflict() -> ClarionError:
    return ClarionError(
        ErrorKind.ABORTED,
        "CONFLICT",
        "the request conflicts with another change to the same resource; fetch it again and retry",
    )


# Set on the connection before its BEGIN, so it costs no extra statement;
# SQLAlchemy puts the connection's default back when it returns to the pool.
_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
# A single statement is atomic by itself: run in autocommit, it saves the
# BEGIN and COMMIT round trips (two of three statements).
_ONE_STATEMENT = {"isolation_level": "AUTOCOMMIT"}


class Database:
    """Hands out sessions; the caller that owns the transaction commits."""

    def __init__(self, engine: AsyncEngine, limits: DatabaseLimits | None = None) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._limits = limits
        self._probe: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        """False from a failure to reach the database until a probe succeeds."""
        return self._probe is None or self._probe.done()

    @asynccontextmanager
    async def transaction(
        self,
        *,
        seconds: float | None = None,
        snapshot: bool = False,
        one_statement: bool = False,
    ) -> AsyncIterator[AsyncSession]:
        """A transaction, committed when the block ends. `seconds` raises the
        limit for one that is known to take long (a 10,000-row bulk).
        `snapshot` makes it a read-only one whose statements all see the same
        committed state: a read in several statements (a notification, then
        its deliveries and steps) under READ COMMITTED can see a status
        change's commit land between two of them. `one_statement`: the block
        runs a single statement (or statements that need no atomicity
        between them), in autocommit, on the hot paths where BEGIN and
        COMMIT would triple the round trips."""
        limits = self._limits
        options = _SNAPSHOT if snapshot else _ONE_STATEMENT if one_statement else {}
        if limits is None:
            async with self._sessions() as session, session.begin():
                await session.connection(execution_options=options)
                yield session
            return
        if not self.reachable:
            raise database_unavailable(limits.retry_after_seconds)
        allowed = seconds or limits.transaction_seconds
        deadline = _request_deadline.get()
        if deadline is not None and not seconds:
            allowed = min(allowed, deadline - asyncio.get_running_loop().time())
            if allowed <= 0.05:
                raise database_unavailable(limits.retry_after_seconds)
        try:
            async with self._guarded(allowed, options) as session:
                if seconds:
                    await session.execute(
                        text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")
                    )
                yield session
        except Exception as error:
            if not is_database_outage(error):
                raise
            if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
                self._start_probing()
            log.warning("database unavailable: %s", error.__class__.__name__)
            raise database_unavailable(limits.retry_after_seconds) from error

    @asynccontextmanager
    async def _guarded(
        self, seconds: float, options: dict[str, Any] | None = None
    ) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            try:
                connection = await session.connection(execution_options=options or {})
            except Exception as error:
                # Could not connect (a pool that is merely busy is no outage).
                if is_database_outage(error) and not isinstance(error, exc.TimeoutError):
                    self._start_probing()
                raise
            driver = (await connection.get_raw_connection()).driver_connection
            watchdog = asyncio.get_running_loop().call_later(seconds, self._cut, driver)
            try:
                yield session
                await session.commit()
            except BaseException:
                # Under the watchdog too: a rollback can wait on a frozen server.
                await session.rollback()
                raise
            finally:
                watchdog.cancel()

    def _cut(self, driver: Any) -> None:
        """The transaction is past its deadline: shut its socket down (not
        close: the fd stays valid for whoever waits on it)."""
        if driver.closed:
            return
        log.warning("a database call exceeded its deadline; dropping its connection")
        self._start_probing()
        fd = driver.pgconn.socket
        with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as dup:
            dup.shutdown(socket.SHUT_RDWR)

    def _start_probing(self) -> None:
        if self.reachable:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_answered())

    async def _probe_until_answered(self) -> None:
        """Asks at once, then every probe_seconds: a call cut for its deadline
        on a box short of CPU, with the database fine, should turn away other
        requests for as long as a SELECT 1 takes, not for a whole probe period
        (bench.isolation: 251 of 869 sends of a burst got 503 that way)."""
        assert self._limits is not None
        while True:
            try:
                async with self._guarded(self._limits.transaction_seconds) as session:
                    await session.execute(text("SELECT 1"))
            except Exception:
                await asyncio.sleep(self._limits.probe_seconds)
                continue
            log.warning("database answering again")
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.engine.dispose()
