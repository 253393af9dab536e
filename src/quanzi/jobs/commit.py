"""Enqueue a job only once the transaction that caused it has committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from quanzi.jobs.queue import huey
from quanzi.kit.errors import QuanziError

_PENDING = "quanzi.jobs.pending"  # session.info key: [(transaction, task), ...]
_COMMITTED = "quanzi.jobs.committed"  # taken by the outermost commit, queued as it closes
_HOOKED = "quanzi.jobs.hooked"


class JobQueueUnavailable(QuanziError):
    """The work was committed but its job could not be queued (Redis or the queue file is down)."""

    status_code = 503


def enqueue_after_commit(session: Session, task: Any, *args: Any) -> str:
    """Queue `task(*args)` when the session's transaction commits; drop it if it rolls back.

    Returns the job's id (known now, queued later). Inside a SAVEPOINT
    (`session.begin_nested()`), rolling back that savepoint drops the jobs queued in it.
    """
    job = task.s(*args)
    if not session.info.get(_HOOKED):
        event.listen(session, "after_commit", _take_committed)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
        event.listen(session, "after_transaction_end", _on_transaction_end)
        session.info[_HOOKED] = True
    if not session.in_transaction():
        # Bind the job to a transaction now (no SQL is sent): a rollback() before any
        # statement must drop it too, and autobegin would only start one at the first query.
        session.begin()
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((transaction, job))
    return str(job.id)


def _take_committed(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a SAVEPOINT was released: the outer transaction can still roll back
    session.info[_COMMITTED] = session.info.pop(_PENDING, [])


def _enqueue(jobs: list[tuple[SessionTransaction, Any]]) -> None:
    failed: list[str] = []
    for _transaction, job in jobs:
        try:
            huey.enqueue(job)
        except Exception as exc:
            failed.append(f"{job.name} {job.id}: {exc}")
    if failed:
        raise JobQueueUnavailable(
            "saved, but the job queue could not take the follow-up work: " + "; ".join(failed)
        )


def _within(transaction: SessionTransaction, ended: SessionTransaction) -> bool:
    """Whether a job recorded under `transaction` belongs to `ended` (it or a child of it)."""
    node: SessionTransaction | None = transaction
    while node is not None:
        if node is ended:
            return True
        node = node.parent
    return False


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [
            (tx, job) for tx, job in pending if not _within(tx, previous_transaction)
        ]


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    # Jobs still pending here belong to a transaction that ended without committing (a
    # rollback, or close() with it open): they must never run.
    session.info.pop(_PENDING, None)
    # Committed ones are queued now rather than in after_commit: the transaction is closed,
    # so a queue failure can be raised without leaving the session unusable.
    _enqueue(session.info.pop(_COMMITTED, []))
