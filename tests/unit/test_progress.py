"""Progress counters: thread-safe, never going backwards (zarf-dev/zarf#5267), and told as plain lines."""

import threading
import time

import pytest

from ansible_collections.petra.core.plugins.module_utils.progress import (
    NULL,
    Progress,
    Ticker,
    describe,
    progress_lines,
)


def test_concurrent_updates_never_go_backwards_and_add_up():
    progress = Progress()
    progress.stage("push", bytes_total=0, items_total=0, unit="blobs")
    workers, rounds = 8, 2000
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            stage = progress.snapshot()[-1]
            seen.append((stage.bytes_done, stage.items_done, stage.bytes_total, stage.items_total,
                         stage.bytes_skipped, stage.items_skipped))

    def work(number):
        for step in range(rounds):
            progress.advance(7, 1, skipped=(number + step) % 3 == 0)
            if step % 100 == 0:
                progress.add_total(nbytes=700, items=100)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=work, args=(number,)) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    final = progress.snapshot()[-1]
    assert (final.bytes_done, final.items_done) == (7 * workers * rounds, workers * rounds)
    assert final.items_skipped == sum(1 for number in range(workers) for step in range(rounds)
                                      if (number + step) % 3 == 0)
    assert len(seen) > 10
    for before, after in zip(seen, seen[1:]):
        assert all(b <= a for b, a in zip(before, after)), (before, after)
    for done_bytes, done_items, total_bytes, total_items, _skipped_bytes, _skipped_items in seen:
        assert done_bytes <= total_bytes and done_items <= total_items  # a bar never shows more than 100%


def test_negative_counts_are_refused():
    progress = Progress()
    progress.stage("verify", 100)
    with pytest.raises(ValueError, match="never goes backwards"):
        progress.advance(-1)
    with pytest.raises(ValueError):
        progress.add_total(items=-3)
    with pytest.raises(ValueError):
        progress.stage("push", bytes_total=-5)
    assert progress.snapshot()[-1].bytes_done == 0


def test_a_new_stage_keeps_the_old_one_as_it_ended():
    progress = Progress()
    progress.stage("verify", 10, 2, unit="entries")
    progress.advance(10, 2)
    progress.stage("push", 40, 4, unit="blobs")
    progress.advance(30, 3, skipped=True)
    verify, push = progress.snapshot()
    assert verify.finished is not None and (verify.bytes_done, verify.items_done) == (10, 2)
    assert push.finished is None and push.bytes_skipped == 30
    line = describe(push)
    assert line.startswith("push: blobs 3 of 4 (3 skipped), 30 B of 40 B (30 B skipped)")
    assert describe(verify).startswith("verify: entries 2 of 2, 10 B of 10 B") and "done in" in describe(verify)


def test_ticker_reports_each_stage_and_the_end():
    lines = []
    with progress_lines(lines.append, interval=0.05) as progress:
        progress.stage("split", 2_000_000, 2, unit="parts")
        progress.advance(1_000_000, 1, skipped=True)
        time.sleep(0.3)
        progress.advance(1_000_000, 1)
    assert any(line.startswith("split: parts 1 of 2 (1 skipped), 1.0 MB of 2.0 MB (1.0 MB skipped)") for line in lines)
    assert lines[-1].startswith("split: parts 2 of 2 (1 skipped), 2.0 MB of 2.0 MB") and "done in" in lines[-1]


def test_ticker_is_quiet_when_nothing_runs():
    lines = []
    ticker = Ticker(Progress(), lines.append, interval=0.01).start()
    time.sleep(0.05)
    ticker.stop()
    assert lines == []


def test_the_default_sink_takes_everything_and_keeps_nothing():
    NULL.stage("verify", 10)
    NULL.advance(5, 1, skipped=True)
    NULL.add_total(items=3)
    NULL.finish()
    assert NULL.snapshot() == []
