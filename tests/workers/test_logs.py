"""A pool's output as log records: parsed, cut, rate-limited and batched by its slot (workers.logs),
and, end to end through a real slot and pool, what a locustfile prints and logs."""

import json
import logging
import sys
import time

from tests.workers.conftest import wait_until
from workers import logs


def _record(level=logging.INFO, msg="hello %s", args=("world",), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("locustfile", level, "locustfile.py", 7, msg, args, exc_info)


def test_a_logging_record_is_one_marked_line_with_its_traceback():
    try:
        raise KeyError("API_HOST")
    except KeyError:
        line = logs.RecordFormatter().format(_record(logging.ERROR, "no host", (), sys.exc_info()))
    assert "\n" not in line and line.startswith(logs.RECORD_MARK)
    parsed = logs.parse_line(line, time.time())
    assert parsed["level"] == "ERROR" and parsed["logger"] == "locustfile"
    assert parsed["message"].startswith("no host\nTraceback (most recent call last):")
    assert "KeyError: 'API_HOST'" in parsed["message"]


def test_other_lines_are_output_and_forged_records_are_tamed():
    now = time.time()
    assert logs.parse_line("plain print", now) == {"t": now, "level": "OUTPUT", "logger": "", "message": "plain print"}
    forged = logs.RECORD_MARK + json.dumps({"t": 1.0, "level": "PANIC", "logger": "x" * 500, "message": "m"})
    record = logs.parse_line(forged, now)
    assert record["t"] == now and record["level"] == "INFO" and len(record["logger"]) == 100
    broken = logs.RECORD_MARK + "{not json"
    assert logs.parse_line(broken, now)["level"] == "OUTPUT"


def test_a_long_line_is_cut_and_says_by_how_much():
    record = logs.parse_line("x" * (logs.MAX_CHARS + 250), time.time())
    assert record["message"] == "x" * logs.MAX_CHARS + "… (250 more characters)"


def test_the_buffer_numbers_lines_limits_the_rate_and_reports_drops():
    buffer = logs.Buffer(rate=10.0, burst=5)
    for i in range(8):
        buffer.line(f"line {i}")
    batch = buffer.take()
    assert [line["seq"] for line in batch["lines"]] == [1, 2, 3, 4, 5]
    assert batch["dropped"] == 3
    assert buffer.take() is None  # nothing new, no new drops
    time.sleep(0.25)  # refills 2.5 tokens
    buffer.line("again")
    assert buffer.take()["lines"][0]["seq"] == 6


def test_the_pump_sends_batches_and_the_rest_when_stopped():
    sent: list[dict] = []
    buffer = logs.Buffer()
    pump = logs.Pump(buffer, sent.append)
    buffer.line("first")
    wait_until(lambda: sent or None, 5, message="a batch")
    buffer.event("WARNING", "limit hit")
    pump.stop()
    lines = [line for batch in sent for line in batch["lines"]]
    assert [(line["level"], line["message"]) for line in lines] == [("OUTPUT", "first"), ("WARNING", "limit hit")]
    assert lines[1]["logger"] == "swarmdeck.slot"


CHATTY = b'''\
import logging
from locust import HttpUser, task, constant

log = logging.getLogger("shop")
print("imported the shop locustfile")


class Shopper(HttpUser):
    wait_time = constant(0.1)

    @task
    def browse(self):
        print("browsing as", id(self) % 1000)
        log.warning("slow page %s", "/cart")
        self.client.get("/ok")
'''


def test_a_slot_sends_what_its_locustfile_prints_and_logs(slot_run, target):
    run = slot_run(CHATTY, host=target.url, users=1)
    run.start()
    run.wait_for("ready")
    run.go()
    wait_until(lambda: any(line["message"] == "slow page /cart" for line in run.log_lines()) or None, 10,
               message="the locustfile's warning")
    run.stop()
    assert run.join(30) == "finished"
    lines = run.log_lines()
    messages = [(line["level"], line["logger"], line["message"]) for line in lines]
    assert ("OUTPUT", "", "imported the shop locustfile") in messages
    assert any(level == "OUTPUT" and message.startswith("browsing as ") for level, _, message in messages)
    assert ("WARNING", "shop", "slow page /cart") in messages
    assert any(logger == "locust.runners" and "Ramping to 1 users" in message for _, logger, message in messages)
    assert any(logger == "swarmdeck.slot" and "ready on" in message for _, logger, message in messages)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
