"""PostgreSQL whose transactions begin with their first statement, and may end with their last,
in the same round trips.

psycopg opens every transaction with a BEGIN of its own, and Django ends it with a COMMIT of its
own: two more round trips per transaction, where an engine step is a short transaction (lock and
read, then write). Here psycopg stays in autocommit mode and a Django transaction begins on the
server when its first statement arrives, sent as `BEGIN; statement`; a statement that ends the
outermost block can carry its COMMIT (`execute_and_commit`); COMMIT and ROLLBACK are otherwise
sent only if the transaction began. Everything else is Django's PostgreSQL backend.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper, debug_transaction
from django.db.transaction import TransactionManagementError
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    begin_pending = False  # Django opened a transaction the server has not been told of yet
    in_server_transaction = False
    committed_early = False  # execute_and_commit committed the transaction Django still holds

    def get_connection_params(self):
        params = super().get_connection_params()
        options = self.settings_dict["OPTIONS"]
        if options.get("isolation_level") is not None:
            raise ImproperlyConfigured("config.db sends a plain BEGIN: set no isolation_level.")
        if options.get("server_side_binding"):
            raise ImproperlyConfigured("config.db joins BEGIN to statements: no server binding.")
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.autocommit = True  # for good: BEGIN is this backend's to send
        self.begin_pending = self.in_server_transaction = self.committed_early = False
        return connection

    def _set_autocommit(self, autocommit):
        self.begin_pending = not autocommit

    def begin_if_pending(self) -> None:
        """Open the server's transaction now, before something that bypasses Django's cursors
        (COPY, for one) runs in it."""
        if self.begin_pending:
            with self.wrap_database_errors:
                self.connection.execute("BEGIN")
            self.begin_pending, self.in_server_transaction = False, True

    def transaction_state_from_server(self) -> None:
        """After an error: whether a transaction is open is what the server says (a statement
        refused before it ran, e.g. a syntax error, took its BEGIN with it)."""
        began = self.connection.info.transaction_status != TransactionStatus.IDLE
        self.in_server_transaction = began
        self.begin_pending = not began and not self.get_autocommit()

    def execute_and_commit(self, cursor, sql: str, params) -> bool:
        """Execute a statement that ends the outermost atomic block, and COMMIT in the same round
        trip (the cursor is left at the statement's own result); return whether it committed.

        atomic()'s own commit then sends nothing and runs the on_commit hooks; until then no
        statement may run. Inside a nested block, or one that must roll back, it only executes.
        """
        outermost = len(self.atomic_blocks) == 1 and not self.savepoint_ids
        if not outermost or self.needs_rollback or self.get_autocommit():
            cursor.execute(sql, params)
            return False
        try:
            cursor.execute(f"{sql};\nCOMMIT", params)
        except Exception:
            self.transaction_state_from_server()
            raise
        self.in_server_transaction, self.committed_early = False, True
        return True

    def _commit(self):
        self._end("COMMIT")

    def _rollback(self):
        self._end("ROLLBACK")

    def _end(self, command: str) -> None:
        self.begin_pending = not self.autocommit  # a manual transaction goes on with a new one
        self.committed_early = False
        if self.connection is not None and self.in_server_transaction:
            self.in_server_transaction = False
            with debug_transaction(self, command), self.wrap_database_errors:
                self.connection.execute(command)

    def make_cursor(self, cursor):
        return _BeginningCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return _BeginningCursorDebugWrapper(cursor, self)


class _BeginsTransactions:
    """Send a pending BEGIN with the statement, below every execute wrapper."""

    def _execute(self, sql, params, *ignored_wrapper_args):
        db = self.db
        _refuse_after_early_commit(db)
        if not db.begin_pending:
            return super()._execute(sql, params, *ignored_wrapper_args)
        named_cursor = getattr(self.cursor, "name", None)
        if named_cursor or not (params is None or isinstance(params, list | tuple)):
            # A server-side cursor wraps the statement in DECLARE; named parameters cannot be
            # joined to others: begin on its own.
            db.begin_if_pending()
            return super()._execute(sql, params, *ignored_wrapper_args)
        db.begin_pending, db.in_server_transaction = False, True
        try:
            result = super()._execute(f"BEGIN;\n{sql}", params, *ignored_wrapper_args)
        except Exception:
            db.transaction_state_from_server()
            raise
        self.cursor.nextset()  # to the statement's own result
        return result

    def _executemany(self, sql, param_list, *ignored_wrapper_args):
        _refuse_after_early_commit(self.db)
        self.db.begin_if_pending()
        return super()._executemany(sql, param_list, *ignored_wrapper_args)


def _refuse_after_early_commit(db) -> None:
    if db.committed_early:
        raise TransactionManagementError("The transaction was committed: nothing may follow.")


class _BeginningCursorWrapper(_BeginsTransactions, CursorWrapper):
    pass


class _BeginningCursorDebugWrapper(_BeginsTransactions, CursorDebugWrapper):
    pass
