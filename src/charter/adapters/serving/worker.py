"""An endpoint worker: one process, one model loaded once, answering predictions on a Unix socket.

``python -m charter.adapters.serving.worker --template`` is the warm template: it imports the model
runtimes once, then forks a worker per request read on its standard input (one JSON line each) and
reports each fork's pid and each worker's exit on its standard output. A worker is thus its own
process without paying the runtimes' import (seconds for scikit-learn and skops) each time.

Models are loaded only from safe formats: skops (types outside scikit-learn, NumPy and SciPy are
refused) and ONNX. Nothing here unpickles.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any

from charter.adapters.serving import wire

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")
LOAD_FAILED = 3

Predict = Callable[[list[list[Any]]], list[Any]]


class ModelLoadError(Exception):
    pass


def _preload() -> None:
    """Import what loading and running a model needs, before any fork."""
    for module in ("numpy", "sklearn", "sklearn.linear_model", "sklearn.ensemble", "sklearn.tree",
                   "sklearn.pipeline", "sklearn.preprocessing", "skops.io", "onnxruntime"):
        with contextlib.suppress(ImportError):
            __import__(module)


def load_skops(path: str) -> Predict:
    import numpy as np
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as error:  # noqa: BLE001 - any failure to read the file is a load failure
        raise ModelLoadError(f"not a readable skops file: {error}") from None
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelLoadError(f"the skops file holds types outside scikit-learn, NumPy and SciPy: "
                             f"{', '.join(refused[:10])}")
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"the skops file did not load: {error}") from None
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"the skops file holds a {type(model).__name__}, which cannot predict")

    def predict(rows: list[list[Any]]) -> list[Any]:
        numeric = all(not isinstance(v, str) for row in rows for v in row)
        result: list[Any] = model.predict(np.asarray(rows, dtype=float if numeric else object)).tolist()
        return result

    return predict


_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(string)": "object"}


def load_onnx(path: str) -> Predict:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one request's rows are few: threads would cost more than save
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"the ONNX model did not load: {error}") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelLoadError(f"the ONNX model takes {len(inputs)} inputs; endpoints serve models with one "
                             "tensor input")
    name, dtype = inputs[0].name, _ONNX_TYPES.get(inputs[0].type)
    if dtype is None:
        raise ModelLoadError(f"the ONNX model's input is a {inputs[0].type}, which endpoints do not feed")
    output = session.get_outputs()[0].name

    def predict(rows: list[list[Any]]) -> list[Any]:
        result: list[Any] = session.run([output], {name: np.asarray(rows, dtype=dtype)})[0].tolist()
        return result

    return predict


def load(path: str, model_format: str) -> Predict:
    if model_format == "skops":
        return load_skops(path)
    if model_format == "onnx":
        return load_onnx(path)
    raise ModelLoadError(f"unknown model format {model_format!r}")


def _answer(predict: Predict, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "ping":
        return {"ok": True, "pid": os.getpid()}
    if op != "predict" or not isinstance(request.get("rows"), list):
        return {"ok": False, "kind": "request", "error": f"unknown request {op!r}"}
    try:
        return {"ok": True, "predictions": predict(request["rows"])}
    except (ValueError, TypeError, IndexError) as error:
        return {"ok": False, "kind": "input", "error": str(error)[:1000]}
    except Exception as error:  # noqa: BLE001 - reported to the caller, the worker goes on
        return {"ok": False, "kind": "model", "error": f"{type(error).__name__}: {str(error)[:1000]}"}


class Batcher:
    """Answers the requests that arrived together, predicting their rows in one call.

    A model's per-call cost (input validation, a pipeline's steps) is most of a small request's
    time: ten concurrent one-row requests cost about what one does when predicted as one batch.
    Each request still gets only its own rows' predictions; if the joint call fails (a request
    with bad input, or a model with a fixed batch size), every request is answered on its own, so
    an error is reported to the request that caused it only. A model that fails jointly while each
    request succeeds alone is not batched again.
    """

    def __init__(self, predict: Predict, max_rows: int = 4096) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.batchable = True

    def answer(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any] | None] = [None] * len(requests)
        batch: list[int] = []
        rows = 0
        for i, request in enumerate(requests):
            if request.get("op") != "predict" or not isinstance(request.get("rows"), list):
                answers[i] = _answer(self.predict, request)
                continue
            if batch and rows + len(request["rows"]) > self.max_rows:
                self._batch(requests, batch, answers)
                batch, rows = [], 0
            batch.append(i)
            rows += len(request["rows"])
        if batch:
            self._batch(requests, batch, answers)
        # Every request was answered above (by itself or in a batch): one answer per request, in order.
        return [a if a is not None else {"ok": False, "kind": "request", "error": "not answered"} for a in answers]

    def _batch(self, requests: list[dict[str, Any]], batch: list[int], answers: list[dict[str, Any] | None]) -> None:
        if len(batch) > 1 and self.batchable:
            joint = [row for i in batch for row in requests[i]["rows"]]
            try:
                predictions = self.predict(joint)
            except Exception:  # noqa: BLE001 - answered one by one below, each with its own error
                predictions = None
            if predictions is not None and len(predictions) == len(joint):
                start = 0
                for i in batch:
                    count = len(requests[i]["rows"])
                    answers[i] = {"ok": True, "predictions": predictions[start:start + count]}
                    start += count
                return
        for i in batch:
            answers[i] = _answer(self.predict, requests[i])
        if len(batch) > 1 and self.batchable and all(answers[i]["ok"] for i in batch):  # type: ignore[index]
            self.batchable = False


def _frames(buffer: bytearray) -> list[dict[str, Any]]:
    """The complete messages at the start of ``buffer`` (removed from it)."""
    out = []
    while len(buffer) >= wire.HEADER.size:
        size = wire.body_size(bytes(buffer[:wire.HEADER.size]))
        end = wire.HEADER.size + size
        if len(buffer) < end:
            break
        out.append(wire.decode(bytes(buffer[wire.HEADER.size:end])))
        del buffer[:end]
    return out


def _loop(server: socket.socket, batcher: Batcher) -> None:
    """One thread serves every connection: each round reads what all of them sent, answers it
    together, and writes the answers back."""
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    buffers: dict[socket.socket, bytearray] = {}

    def drop(conn: socket.socket) -> None:
        selector.unregister(conn)
        buffers.pop(conn, None)
        conn.close()

    while True:
        pending: list[tuple[socket.socket, dict[str, Any]]] = []
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is server:
                conn, _ = server.accept()
                selector.register(conn, selectors.EVENT_READ)
                buffers[conn] = bytearray()
                continue
            try:
                data = sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                drop(sock)
                continue
            buffers[sock] += data
            try:
                pending += [(sock, message) for message in _frames(buffers[sock])]
            except (wire.ChannelClosed, ValueError):
                drop(sock)
        if not pending:
            continue
        for (conn, _), answer in zip(pending, batcher.answer([m for _, m in pending]), strict=True):
            if conn not in buffers:
                continue
            try:
                conn.sendall(wire.frame(answer))
            except (OSError, ValueError):
                drop(conn)


def serve(socket_path: str, model_path: str, model_format: str, status_path: str) -> int:
    """Load the model, then answer on ``socket_path`` until terminated. A model that fails to load
    leaves its reason in ``status_path`` and ends the worker with LOAD_FAILED."""
    try:
        predict = load(model_path, model_format)
    except ModelLoadError as error:
        _write(status_path, {"error": str(error)})
        return LOAD_FAILED
    except Exception as error:  # noqa: BLE001
        _write(status_path, {"error": f"{type(error).__name__}: {error}"})
        return LOAD_FAILED
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(128)
    _write(status_path, {"ready": True, "pid": os.getpid()})
    _loop(server, Batcher(predict))
    return 0


def _write(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _child(job: dict[str, Any], template_pid: int) -> None:
    """In the forked worker: its own session and output, then serve; never returns."""
    code = 1
    try:
        os.setsid()
        _die_with_parent(template_pid)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        code = serve(job["socket"], job["model"], job["format"], job["status"])
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into the template
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(code)


def _die_with_parent(template_pid: int) -> None:
    """On Linux, end with the template: a server killed outright leaves no worker behind (the
    template itself ends when the server's end of its standard input closes)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        # The template ended before the call took effect: the worker was handed to a reaper
        # (init, or a subreaper such as a container's or a service manager's, not always pid 1).
        if os.getppid() != template_pid:
            os._exit(1)


def template() -> int:
    _preload()
    template_pid = os.getpid()
    out = sys.stdout
    stdin = sys.stdin.fileno()
    buffer = b""

    def report(doc: dict[str, Any]) -> None:
        out.write(json.dumps(doc) + "\n")
        out.flush()

    while True:
        ready, _, _ = select.select([stdin], [], [], 0.05)
        if ready:
            data = os.read(stdin, 65536)
            if not data:
                return 0  # the supervisor went away: its workers are stopped by it or by their session
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                job = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(job, template_pid)
                report({"started": job["id"], "pid": pid})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            report({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def main(argv: list[str]) -> int:
    if argv[:1] == ["--template"]:
        return template()
    if len(argv) == 5 and argv[0] == "--serve":
        return serve(*argv[1:])
    print("usage: worker --template | --serve SOCKET MODEL FORMAT STATUS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
