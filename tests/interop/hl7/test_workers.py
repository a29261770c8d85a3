"""The listener's database threads (listener.Workers): the thread idle the shortest
time takes the next task, never more than `size` threads, every task submitted is
run, and each thread runs `on_exit` as it ends."""

from __future__ import annotations

import threading

import pytest

from carebell.interop.hl7.listener import Workers


def thread_name() -> str:
    return threading.current_thread().name


@pytest.fixture
def ended() -> list[str]:
    """The names of the threads that ran `on_exit`, in order."""
    return []


@pytest.fixture
def workers(ended):
    pool = Workers(4, name="t", on_exit=lambda: ended.append(thread_name()))
    yield pool
    pool.shutdown()


def run_together(pool: Workers, count: int) -> list[str]:
    """`count` tasks that each wait until all have started: as many threads."""
    barrier = threading.Barrier(count)

    def task() -> str:
        barrier.wait(10)
        return thread_name()

    return [f.result(10) for f in [pool.submit(task) for _ in range(count)]]


def test_tasks_one_after_another_stay_on_the_thread_that_was_idle_last(workers):
    assert len(set(run_together(workers, 3))) == 3
    last = workers.submit(thread_name).result(10)
    assert {workers.submit(thread_name).result(10) for _ in range(20)} == {last}


def test_no_more_threads_than_its_size_and_every_task_runs(workers):
    release, started = threading.Event(), threading.Semaphore(0)

    def task(n: int) -> int:
        started.release()
        release.wait(10)
        return n

    futures = [workers.submit(task, n) for n in range(10)]
    for _ in range(4):
        assert started.acquire(timeout=10)
    assert not started.acquire(timeout=0.2)  # the other six wait for a thread
    release.set()
    assert [f.result(10) for f in futures] == list(range(10))
    assert len({t.name for t in workers._threads}) == 4


def test_a_tasks_error_reaches_its_caller_and_the_thread_goes_on(workers):
    def broken():
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        workers.submit(broken).result(10)
    assert workers.submit(lambda: 42).result(10) == 42


def test_shutdown_runs_what_was_submitted_then_each_thread_ends_with_on_exit(ended):
    pool = Workers(2, name="t", on_exit=lambda: ended.append(thread_name()))
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 10) for _ in range(2)] + [pool.submit(lambda: "late")]
    closing = threading.Thread(target=pool.shutdown)
    closing.start()
    gate.set()
    closing.join(10)
    assert not closing.is_alive()
    assert [f.result(0) for f in futures] == [True, True, "late"]
    assert sorted(ended) == ["t_0", "t_1"]
    with pytest.raises(RuntimeError):
        pool.submit(thread_name)


def test_shutdown_with_cancel_futures_cancels_what_waits_for_a_thread(ended):
    pool = Workers(1, name="t", on_exit=lambda: ended.append(thread_name()))
    gate = threading.Event()
    running, waiting = pool.submit(gate.wait, 10), pool.submit(thread_name)
    closing = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True})
    closing.start()
    gate.set()
    closing.join(10)
    assert running.result(0) is True and waiting.cancelled()
    assert ended == ["t_0"]
