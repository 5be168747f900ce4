"""What tests/test_distributed.py has torchrun start as each worker, and starts torchrun itself as: a stand-in
process that has a fork server (which imported torch, torch._dynamo and the package once) fork the real worker
(or the real ``python -m torch.distributed.run``). Each torchrun worker would otherwise spend about 7 s of a
2-core CPU importing them, and torchrun itself 2-3 s importing torch; the launches are most of that file's time.
Not collected by pytest.

    python forked_worker.py --serve SOCKET            the server (one per test module); prints "ready"
    python forked_worker.py -m mobilenet_v1 train ... what torchrun runs: the worker, forked by the server
    python forked_worker.py -m torch.distributed.run ...  torchrun itself, forked by the server alike
    python forked_worker.py SCRIPT.py ...             named by FORK_SERVER; without it, run as itself

The forked worker gets this process's argv, environment, working folder and standard streams, runs
``python -m MODULE`` or ``python SCRIPT`` as a process of its own would (atexit handlers included),
and this process ends as it ends: its exit status, or killed by its signal. The signals torchrun sends
(SIGTERM, SIGINT) are passed on to it; where this process is killed outright, the server kills it.
The stand-in imports nothing heavy.
"""
import json
import os
import signal
import socket
import struct
import sys

RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def stand_in(args) -> None:
    path = os.environ.get("FORK_SERVER")
    if not path:
        os.execv(sys.executable, [sys.executable, "-u", *args])
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    payload = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(conn, [struct.pack("!Q", len(payload)) + payload], [0, 1, 2])
    replies = conn.makefile("rb")
    pid = int(replies.readline())

    def relay(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in RELAYED:
        signal.signal(signum, relay)
    line = replies.readline()
    if not line:
        sys.exit(f"forked_worker: the fork server at {path} went away before worker {pid} ended")
    ended = json.loads(line)
    if ended["signal"]:
        if ended["signal"] != signal.SIGKILL:  # whose handler cannot be set
            signal.signal(ended["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), ended["signal"])
    sys.exit(ended["exitcode"])


def _read_request(conn):
    head, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    body = head
    while len(body) < 8 or len(body) < 8 + struct.unpack("!Q", body[:8])[0]:
        more = conn.recv(1 << 20)
        if not more:
            for fd in fds:
                os.close(fd)
            raise ConnectionError("the stand-in went away mid-request")
        body += more
    return json.loads(body[8:]), fds


def _run_worker(request, fds, listener, conns) -> None:
    """In the forked child: become the worker the stand-in was started as, and exit as it does (never
    back into the server's loop)."""
    code = 1
    try:
        import atexit
        import runpy
        import threading
        import traceback

        listener.close()
        for c in conns:
            c.close()
        for fd, std in zip(fds, (0, 1, 2)):
            os.dup2(fd, std)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's own handler is not the worker's
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        argv = request["argv"]
        try:
            if argv[0] == "-m":
                sys.argv = [argv[1], *argv[2:]]
                sys.path[0] = os.getcwd()  # as python -m has it
                runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
            else:
                sys.argv = list(argv)
                sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
                runpy.run_path(argv[0], run_name="__main__")
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        threading._shutdown()  # as the interpreter's own exit: non-daemon threads, then atexit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve(path: str) -> None:
    """Started unbuffered (``python -u``), as torchrun starts its workers: the forked ones keep its streams'
    objects. SIGTERM ends it and the workers still running."""
    import importlib
    import select

    import torch

    torch.set_num_threads(1)  # no OpenMP pool before a fork (as the workers run under OMP_NUM_THREADS=1)
    # torch._dynamo: what each training worker imports (torch's optimizers, DDP)
    for name in ("torch._dynamo", "torch.distributed", "mobilenet_v1.cli", "mobilenet_v1.evaluate",
                 "mobilenet_v1.train"):
        importlib.import_module(name)
    importlib.import_module("mobilenet_v1.transforms").torchvision_ops()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    children = {}  # pid: the stand-in's connection

    def kill(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(signum, frame):
        for pid in children:
            kill(pid)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, *children.values()], [], [], 0.02)
        for sock in readable:
            if sock is listener:
                conn, _ = listener.accept()
                pid = None
                try:
                    request, fds = _read_request(conn)
                    pid = os.fork()
                    if pid == 0:
                        _run_worker(request, fds, listener, [conn, *children.values()])
                    for fd in fds:
                        os.close(fd)
                    children[pid] = conn
                    conn.sendall(f"{pid}\n".encode())
                except (OSError, ValueError):  # the stand-in went away: so does its worker
                    if pid:
                        kill(pid)
                    else:
                        conn.close()
                continue
            try:
                alive = sock.recv(64)
            except OSError:
                alive = b""
            if not alive:  # the stand-in was killed outright: so is its worker
                kill(next(p for p, c in children.items() if c is sock))
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is None:
                continue
            ended = {"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                     "exitcode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1}
            try:
                conn.sendall((json.dumps(ended) + "\n").encode())
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        stand_in(sys.argv[1:])
