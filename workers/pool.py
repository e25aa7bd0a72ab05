"""The pool process: `python -m workers.pool`, child of one slot task, one core, Locust unchanged.

The only module of Swarmdeck that imports locust (and so gevent's monkey-patching). It holds
no credentials: it talks to its slot over stdin/stdout only.

Frames (both directions, workers.frames): 4-byte big-endian length, then a msgpack map with a "type".

slot -> pool
    init   {run, slot, slots, params, locustfile}      once, first
    go     {delay}                                     start users this many seconds from now
    users  {users, spawn_rate}                         live change, already this slot's share
    stop   {within?}                                   stop users (stop_timeout, at most `within` s), send final, exit 0
    (EOF on stdin: the slot is gone; the pool exits at once)

pool -> slot
    ready    {pid, user_classes}                       the locustfile imported
    error    {stage, message, detail}                  "import" (then exit 1), "users" (every user
                                                       failed in __init__ or on_start; the pool
                                                       stops) or "run"
    snapshot {data: wire bytes, kind: "delta"|"final"} one per SNAPSHOT_INTERVAL after go, final last

Print() in a locustfile cannot corrupt the frames: fd 1 is pointed at stderr and the frames go
to a private duplicate of the original stdout.

Every spawned user failing in on_start (Locust logs it and the user greenlet dies) or in its
__init__ (in Locust that kills the spawning greenlet: no more users, no word) is reported once
as an error frame, stage "users", naming the exception and where; the pool then stops and sends
its final snapshot like after a stop.

User code sees Locust's distributed API: `environment.runner.worker_index` and `worker_count`
are the slot's index and the run's slot count, also in SWARMDECK_SLOT and SWARMDECK_SLOTS.
"""

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# Frames get a private copy of stdout; fd 1 (print, C extensions) now writes to stderr.
_FRAME_OUT = os.dup(1)
os.dup2(2, 1)
_FRAME_IN = 0

import logging  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.lock  # noqa: E402
import gevent.os  # noqa: E402
import psutil  # noqa: E402

from workers import envvars, frames, logs, protocol, stats, wire  # noqa: E402

log = logging.getLogger("swarmdeck.pool")


class FrameIO:
    """Cooperative (gevent) framed reads from stdin and writes to the private stdout copy (workers.frames)."""

    def __init__(self, fd_in: int = _FRAME_IN, fd_out: int = _FRAME_OUT):
        self.fd_in = fd_in
        self.fd_out = fd_out
        gevent.os.make_nonblocking(fd_in)
        gevent.os.make_nonblocking(fd_out)
        self.lock = gevent.lock.RLock()

    def _read_exact(self, n: int) -> bytes:
        """n bytes, or fewer at EOF."""
        chunks = []
        while n:
            chunk = gevent.os.nb_read(self.fd_in, min(n, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read(self) -> dict | None:
        return frames.read(self._read_exact)

    def write(self, message: dict) -> None:
        data = memoryview(frames.pack(message))
        with self.lock:
            while data:
                written = gevent.os.nb_write(self.fd_out, data)
                data = data[written:]


def scale_shape(shape, slot: int, slots: int, share: float):
    """Make a LoadTestShape instance answer with this slot's share of users and spawn rate."""
    original = shape.tick

    def tick():
        result = original()
        if result is None:
            return None
        users, spawn_rate, *rest = result
        return (protocol.share(users, slots, slot) if slots else round(users * share), spawn_rate * share, *rest)

    shape.tick = tick
    return shape


def error_message(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def memory_limit_message() -> str:
    """What a MemoryError means here: the sandbox's address-space limit (workers.limits)."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return "the locustfile ran out of memory (killed)"
    return f"the locustfile exceeded its {soft // (1024 * 1024)} MiB memory limit (killed)"


def user_traceback(error: BaseException, root: str) -> str:
    """The traceback as its author reads it: only frames in the locustfile's own files, with
    paths relative to the bundle (not the slot's temporary directory), then the error line.
    With no frame of theirs (e.g. a missing module imported at the top), the whole traceback."""
    root = os.path.join(os.path.abspath(root), "")
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename.startswith(root)]
    if isinstance(error, SyntaxError) and error.filename and error.filename.startswith(root):
        frames = []  # the error line below says where
    if not frames and not isinstance(error, SyntaxError):
        return traceback.format_exc().replace(root, "")
    for frame in frames:
        frame.filename = frame.filename[len(root):]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines).replace(root, "")


def user_location(error: BaseException, root: str) -> str:
    """Where in the locustfile's own files the error was raised ("locustfile.py:12"), or ""."""
    root = os.path.join(os.path.abspath(root), "")
    mine = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename.startswith(root)]
    return f"{mine[-1].filename[len(root):]}:{mine[-1].lineno}" if mine else ""


def create_slot_runner(env, slot: int, slots: int, on_spawn_error):
    """Locust's LocalRunner as one worker of a distributed run (the environment's runner).

    - `worker_index` and `worker_count` are the slot's index and the run's slot count, as
      locustfiles written for `--worker` expect (LocalRunner has them as 0 and 1).
    - A user raising in __init__ or while being started is passed to `on_spawn_error(user_class,
      error, phase)` and the spawner goes on; in Locust it kills the spawning greenlet.
    """
    from locust.exception import StopTest
    from locust.runners import STATE_INIT, STATE_SPAWNING, STATE_STOPPED, LocalRunner

    class SlotRunner(LocalRunner):
        def __init__(self, environment) -> None:
            super().__init__(environment)
            self.worker_index = slot
            self.worker_count = slots

        def spawn_users(self, user_classes_spawn_count: dict[str, int], wait: bool = False):
            """Runner.spawn_users (locust 2.47), one user's failure reported instead of fatal."""
            if self.state in (STATE_INIT, STATE_STOPPED):
                self.update_state(STATE_SPAWNING)
            new_users = []
            for name, count in user_classes_spawn_count.items():
                user_class = self.user_classes_by_name[name]
                for _ in range(count):
                    phase = "in __init__"
                    try:
                        user = user_class(self.environment)
                        phase = "while being spawned"
                        if not hasattr(user, "environment"):
                            raise AttributeError(
                                f"Attribute 'environment' is missing on user {name}. Perhaps you defined your own "
                                "__init__ and forgot to call the base constructor? (super().__init__(*args, **kwargs))")
                        user.start(self.user_greenlets)
                    except StopTest:
                        raise  # the locustfile stops the test: Locust's handler of the spawning greenlet does
                    except Exception as error:  # noqa: BLE001 - user code
                        on_spawn_error(user_class, error, phase)
                        continue
                    new_users.append(user)
            if wait:
                self.user_greenlets.join()
            return new_users

    return env._create_runner(SlotRunner)  # sets env.runner and the shape's runner, as create_local_runner


def settle_heap() -> None:
    """Put everything imported so far (Locust, gevent, the locustfile: some 50,000 objects) beyond the cyclic
    garbage collector's reach, once, before users start: a full collection then scans only what the run
    allocates. Otherwise each full collection stopped the event loop for 13-21 ms mid-run, and every request
    in flight took that much longer: a tail-latency spike of the generator's, not of the target."""
    gc.collect()
    gc.freeze()


LAG_PROBE_INTERVAL = 0.01   # seconds: how often the probe asks the event loop to wake it


class LagProbe:
    """How late the event loop runs what is due: a greenlet asks to wake every LAG_PROBE_INTERVAL and keeps
    the most it overslept since it was last read. A loop held up (the pool's CPU busy with requests, or the
    machine's CPU taken from it: another process, a VM's CPU steal) delays every response it reads by as
    much, so a response time of such a second includes the generator's wait, not only the target's."""

    def __init__(self):
        self.worst = 0.0
        self.greenlet = gevent.spawn(self._probe)

    def _probe(self) -> None:
        clock = time.perf_counter
        while True:
            asked = clock()
            gevent.sleep(LAG_PROBE_INTERVAL)
            late = clock() - asked - LAG_PROBE_INTERVAL
            if late > self.worst:
                self.worst = late

    def take_ms(self) -> float:
        """The worst lag since the last call, in ms; starts a new interval."""
        worst, self.worst = self.worst, 0.0
        return max(0.0, worst * 1000)


class Pool:
    masker = envvars.Masker()  # the run's secrets, set by load(): snapshots leave with them masked

    def __init__(self, io: FrameIO):
        self.io = io
        self.recorder = stats.Recorder()
        self.process = psutil.Process()
        self.process.cpu_percent()
        self.run_id = 0
        self.slot = 0
        self.slots = 1
        self.params: dict = {}
        self.env = None
        self.runner = None
        self.t0: float | None = None
        self.seq = 0
        self.deltas_sent = 0
        self.stop_requested = gevent.event.Event()
        self.finished = gevent.event.Event()
        self.closing = False
        self.wake = gevent.event.Event()
        self.snapshotter = None
        self.lag: LagProbe | None = None
        self.on_start_failures = 0
        self.first_on_start_failure: tuple[str, str] | None = None
        self.spawn_failures = 0
        self.first_spawn_failure: tuple[str, str] | None = None  # (message with where, traceback)
        self.bundle_dir = os.getcwd()
        self.reported_all_failed = False
        self.memory_reported = False

    # -- import ------------------------------------------------------------------------------
    def load(self, init: dict) -> None:
        self.run_id = int(init["run"])
        self.slot = int(init["slot"])
        self.slots = int(init.get("slots") or 1)
        self.params = dict(init["params"])
        # The run's cap on endpoint names, as the collector applies it: names past it leave as "(other)".
        self.recorder = stats.Recorder(max_endpoints=int(self.params.get("max_endpoints") or stats.MAX_ENDPOINTS))
        # The scenario's variables and secrets (workers.envvars), before the import, as an `export` would.
        environment = dict(init.get("env") or {})
        os.environ.update(envvars.pool_environment(environment, None))
        self.masker = envvars.Masker({**{name: environment[name] for name in init.get("secret_names") or []
                                         if name in environment}, **envvars.secret_options(self.params)})
        path = os.path.abspath(init.get("locustfile") or "locustfile.py")
        self.bundle_dir = os.path.dirname(path)
        # Before the import, so module-level code can pick its share of test data too.
        os.environ["SWARMDECK_SLOT"] = str(self.slot)
        os.environ["SWARMDECK_SLOTS"] = str(self.slots)
        try:
            self._load(path)
        except BaseException as error:  # noqa: BLE001 - anything the user's module raises, SystemExit too
            if isinstance(error, MemoryError):
                self.io.write({"type": "error", "stage": "limit", "message": memory_limit_message(), "detail": ""})
                raise SystemExit(1) from None
            self.io.write({"type": "error", "stage": "import", "message": error_message(error),
                           "detail": user_traceback(error, os.path.dirname(path))})
            raise SystemExit(1) from None
        settle_heap()
        self.io.write({"type": "ready", "pid": os.getpid(),
                       "user_classes": [cls.__name__ for cls in self.env.user_classes]})

    def _load(self, path: str) -> None:
        import locust
        from locust.env import Environment
        from locust.util.load_locustfile import load_locustfile

        from workers import pool_target_guard

        pool_target_guard.install(self.params.get("targets"))  # before user code: HTTP clients keep to the allow list
        sys.path.insert(0, os.path.dirname(path))
        available, shapes = load_locustfile(path)
        wanted = list(self.params.get("user_classes") or [])
        if wanted:
            missing = [name for name in wanted if name not in available]
            if missing:
                raise LookupError(f"The locustfile has no User class named {', '.join(missing)} "
                                  f"(it has: {', '.join(sorted(available)) or 'none'}).")
            user_classes = [available[name] for name in wanted]
        else:
            user_classes = list(available.values())
        user_classes = [cls for cls in user_classes if getattr(cls, "weight", 1) != 0 or getattr(cls, "fixed_count", 0)]
        if not user_classes:
            raise LookupError("The locustfile defines no User class to run (a class deriving from HttpUser, "
                              "FastHttpUser or User, not abstract).")
        shape = None
        if shapes:
            if len(shapes) > 1:
                log.warning("The locustfile has %s LoadTestShape classes; using the first.", len(shapes))
            shape = scale_shape(shapes[0], self.slot, self.slots, float(self.params.get("share") or 1.0))
        self.env = Environment(
            user_classes=user_classes, host=self.params.get("host") or None,
            tags=list(self.params.get("tags") or []) or None,
            exclude_tags=list(self.params.get("exclude_tags") or []) or None,
            stop_timeout=float(self.params.get("stop_timeout") or 0.0), shape_class=shape, events=locust.events,
            locustfile=os.path.basename(path), parsed_options=_parsed_options(path, self.params.get("options")),
            available_user_classes=available,
        )
        self.runner = create_slot_runner(self.env, self.slot, self.slots, self.on_spawn_error)
        self._install_listeners()
        self.env.events.init.fire(environment=self.env, runner=self.runner, web_ui=None)

    def _install_listeners(self) -> None:
        events = self.env.events
        # Locust's own per-request statistics are replaced by the Recorder (same cost or less):
        # the runner's on_request listener feeds RequestStats, which nobody reads here.
        for handler in list(events.request._handlers):
            if getattr(handler, "__qualname__", "") == "Runner.__init__.<locals>.on_request":
                events.request.remove_listener(handler)
        record = self.recorder.record

        def on_request(request_type, name, response_time, response_length, exception=None, **_kw):
            record(request_type, name, response_time, response_length, exception)

        events.request.add_listener(on_request)

        from locust import User

        def on_user_error(user_instance, exception, tb, **_kw):
            if isinstance(exception, MemoryError) and not self.memory_reported:
                self.memory_reported = True  # the slot kills the sandbox and names the limit
                try:
                    where = user_traceback(exception, os.getcwd())
                except MemoryError:
                    where = ""
                self.io.write({"type": "error", "stage": "limit", "message": memory_limit_message(), "detail": where})
            # As import errors show it: the author's own frames, paths relative to the bundle.
            formatted = user_traceback(exception, os.getcwd())
            self.recorder.record_exception(error_message(exception), formatted)
            # User.run fires with the User itself only when on_start failed (tasks fire with a TaskSet).
            if isinstance(user_instance, User):
                self.on_start_failures += 1
                if self.first_on_start_failure is None:
                    self.first_on_start_failure = (error_message(exception), formatted)

        events.user_error.add_listener(on_user_error)

    def on_spawn_error(self, user_class: type, error: Exception, phase: str) -> None:
        """A user raised in __init__ (or while being started): an exception with its traceback, as the
        author reads it; the others are still spawned."""
        detail = user_traceback(error, self.bundle_dir)
        self.recorder.record_exception(error_message(error), detail)
        self.spawn_failures += 1
        if self.first_spawn_failure is None:
            where = user_location(error, self.bundle_dir)
            message = f"{phase}: {error_message(error)}" + (f" at {where}" if where else "")
            self.first_spawn_failure = (message, detail)
            log.error("A %s user failed %s (the Exceptions tab counts the others):\n%s", user_class.__name__,
                      message, detail)

    # -- control -------------------------------------------------------------------------------
    def listen(self) -> None:
        """Read control frames until stop or EOF."""
        while True:
            try:
                message = self.io.read()
            except Exception:  # noqa: BLE001
                log.exception("Unreadable control frame; stopping.")
                message = None
            if message is None:  # the slot is gone: nobody would read a final snapshot
                log.warning("The slot closed the control pipe; exiting.")
                os._exit(3)
            kind = message.get("type")
            if kind == "go":
                gevent.spawn(self.go, float(message.get("delay") or 0.0))
            elif kind == "stop":
                self.limit_stop_timeout(message.get("within"))
                self.stop_requested.set()
            elif kind == "users":
                self.change_users(int(message["users"]), float(message["spawn_rate"]))

    def limit_stop_timeout(self, within) -> None:
        """A stop that must be over within `within` s (stop everything): the users get at most that long
        to finish their task, whatever the run's stop timeout (0 already stops them at once)."""
        if within is None or self.env is None:
            return
        within = max(0.0, float(within))
        if self.env.stop_timeout and self.env.stop_timeout > within:
            self.env.stop_timeout = within

    def go(self, delay: float) -> None:
        """Start users `delay` seconds from now (the slot computed it from Redis's clock)."""
        if self.t0 is not None or self.stop_requested.is_set():
            return
        if delay > 0:
            gevent.sleep(delay)
        if self.stop_requested.is_set():
            return
        self.t0 = time.monotonic()
        if self.env.shape_class is not None:
            self.runner.start_shape()
        else:
            self.runner.start(int(self.params.get("users") or 0), float(self.params.get("spawn_rate") or 1.0))
        self.lag = LagProbe()
        self.snapshotter = gevent.spawn(self.snapshot_loop)
        duration = float(self.params.get("duration") or 0)
        if duration > 0:
            gevent.spawn_later(duration, self.stop_requested.set)

    def change_users(self, users: int, spawn_rate: float) -> None:
        self.params["users"], self.params["spawn_rate"] = users, spawn_rate
        if self.t0 is not None and self.env.shape_class is None and not self.stop_requested.is_set():
            self.runner.start(users, spawn_rate)

    # -- snapshots -----------------------------------------------------------------------------
    def send_snapshot(self, kind: str, tick: int) -> None:
        self.seq += 1
        elapsed = time.monotonic() - self.t0 if self.t0 is not None else 0.0
        snapshot = self.recorder.take_delta(
            run=self.run_id, slot=self.slot, seq=self.seq, tick=max(0, tick), elapsed=elapsed,
            users=self.runner.user_count if self.runner else 0, cpu=self.process.cpu_percent(), kind=kind,
            classes=self.runner.user_classes_count if self.runner else None,
            lag_ms=self.lag.take_ms() if self.lag is not None else 0.0)
        self.io.write({"type": "snapshot", "kind": kind, "data": wire.encode(self.masker.snapshot(snapshot))})

    def snapshot_loop(self) -> None:
        interval = protocol.SNAPSHOT_INTERVAL
        while not self.closing:
            due = self.t0 + (self.deltas_sent + 1) * interval
            self.wake.wait(max(0.0, due - time.monotonic()))
            if self.closing:
                return
            # A delta covers [n-1, n) seconds since go: its tick is the second it starts in.
            self.send_snapshot("delta", int(self.deltas_sent * interval))
            self.deltas_sent += 1
            self.check_all_users_failed()

    def check_all_users_failed(self) -> None:
        """No user alive, and at least as many failed (in __init__ or on_start) as the slot runs: the
        locustfile cannot run. Also while still ramping up: the spawner retries the missing users
        at every step, so a slow ramp-up of failing users needs no waiting for its end."""
        from locust.runners import STATE_RUNNING, STATE_SPAWNING

        runner = self.runner
        failures = self.spawn_failures + self.on_start_failures
        if (self.reported_all_failed or failures == 0 or runner.state not in (STATE_SPAWNING, STATE_RUNNING)
                or runner.user_count != 0 or failures < runner.target_user_count):
            return
        self.reported_all_failed = True
        if self.first_spawn_failure is not None:  # __init__ comes before on_start: the first error met
            message, detail = self.first_spawn_failure
            message = f"All {failures} user(s) failed {message}"
        else:
            message, detail = self.first_on_start_failure or ("unknown error", "")
            message = f"All {failures} user(s) failed in on_start: {message}"
        self.io.write({"type": "error", "stage": "users", "message": message, "detail": detail})
        self.stop_requested.set()

    # -- the end -------------------------------------------------------------------------------
    def shape_ended(self) -> bool:
        from locust.runners import STATE_STOPPED

        return (self.t0 is not None and self.env.shape_class is not None and self.runner.shape_greenlet is None
                and self.runner.state == STATE_STOPPED)

    def wait_for_end(self) -> None:
        while not self.stop_requested.wait(0.2):
            if self.shape_ended():
                break

    def finish(self) -> None:
        """Stop users (stop_timeout), then the final snapshot with everything not yet sent."""
        if self.t0 is not None:
            self.runner.stop()  # waits up to stop_timeout for users to finish their task
            self.closing = True
            self.wake.set()
            if self.snapshotter is not None:
                self.snapshotter.join()
            self.send_snapshot("final", int(self.deltas_sent * protocol.SNAPSHOT_INTERVAL))
        else:
            self.closing = True
            self.send_snapshot("final", 0)
        try:
            self.runner.greenlet.kill(block=True, timeout=2)
            self.env.events.quitting.fire(environment=self.env, reverse=True)
            self.env.events.quit.fire(exit_code=0)
        except Exception:  # noqa: BLE001 - user listeners; the run is over
            log.exception("A quitting listener failed.")


def _parsed_options(path: str, options: dict | None = None):
    """Locust's defaults (plus options added by init_command_line_parser), like `locust -f`; with the
    run's options set as on its command line (workers.pool_options), a refusal failing the import."""
    if options:
        from workers.pool_options import parse

        return parse(path, options)
    try:
        from locust.argument_parser import get_parser

        return get_parser().parse_args(args=["-f", path])
    except BaseException:  # noqa: BLE001 - argparse exits on trouble; the options are a convenience
        return None


def main() -> int:
    # One marked line per logging record, for the run's Logs tab (workers.logs); print() lines as they come.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.RecordFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    io = FrameIO()
    init = io.read()
    if init is None or init.get("type") != "init":
        log.error("Expected an init frame, got %r.", init)
        return 2
    pool = Pool(io)
    pool.load(init)
    gevent.spawn(pool.listen)
    pool.wait_for_end()
    pool.finish()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    sys.stderr.flush()
    os._exit(code)
