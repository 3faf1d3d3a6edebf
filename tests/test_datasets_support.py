"""Test helpers (no tests here): CIFAR-10 look-alike files and a local HTTP server.

The files follow CIFAR-10's python version exactly (folder and file names, pickled dicts with
bytes keys, b'data' uint8 (rows, 3072) channel-major, b'labels' a list of ints), only with
`rows` images per batch instead of 10000 when a test wants to be quick. Image n of a batch has
label (n + batch) % 10 and pixels `pattern(label)`, so a loader can be checked pixel by pixel.
"""
import hashlib
import io
import pickle
import re
import socket
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "datasets"))  # get_datasets and its helpers are plain scripts

FOLDER = "cifar-10-batches-py"
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
               b"ship", b"truck"]


def pattern(labels):
    """Pixels of images with these labels: uint8 (n, 3, 32, 32), value (c*1024+h*32+w+7*label)%256."""
    c, h, w = np.indices((3, 32, 32))
    table = ((c * 1024 + h * 32 + w + 7 * np.arange(10).reshape(-1, 1, 1, 1)) % 256)
    return table.astype(np.uint8)[np.asarray(labels)]


def batch_labels(index, rows):
    """Labels of batch number `index` (0..5): (n + index) % 10 for n < rows."""
    return [(n + index) % 10 for n in range(rows)]


def batch_bytes(index, rows):
    """One pickled batch dict, as the CIFAR-10 python version stores it."""
    labels = batch_labels(index, rows)
    batch = {b"batch_label": f"batch {index + 1} of 6".encode(),
             b"labels": labels,
             b"data": pattern(labels).reshape(rows, 3072),
             b"filenames": [f"img_{index}_{n}.png".encode() for n in range(rows)]}
    return pickle.dumps(batch, protocol=2)


def meta_bytes(rows):
    return pickle.dumps({b"num_cases_per_batch": rows, b"label_names": LABEL_NAMES,
                         b"num_vis": 3072}, protocol=2)


def write_cifar_folder(root, rows):
    """Write FOLDER/ with all batches and batches.meta under `root`; returns the folder."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True)
    for index, name in enumerate(BATCHES):
        (folder / name).write_bytes(batch_bytes(index, rows))
    (folder / "batches.meta").write_bytes(meta_bytes(rows))
    return folder


def _add(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, len(data), 0o644
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def cifar_archive(rows, extra=()):
    """Bytes of cifar-10-python.tar.gz with `rows` images a batch.

    extra: (name, data, tarfile type, linkname) members appended after the real ones.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        _add(tar, FOLDER, kind=tarfile.DIRTYPE)
        for index, name in enumerate(BATCHES):
            _add(tar, f"{FOLDER}/{name}", batch_bytes(index, rows))
        _add(tar, f"{FOLDER}/batches.meta", meta_bytes(rows))
        # 64 KiB that do not compress, so that "half the archive" spans several chunks
        noise = np.random.default_rng(0).bytes(1 << 16).hex().encode()[: 1 << 16]
        _add(tar, f"{FOLDER}/readme.html", b"<html>CIFAR-10 look-alike</html><!--" + noise + b"-->")
        for name, data, kind, linkname in extra:
            _add(tar, name, data, kind, linkname)
    return buffer.getvalue()


def md5(data):
    return hashlib.md5(data).hexdigest()


class FileServer:
    """Serves {url path: bytes} on 127.0.0.1 with Range support, in a thread.

    `requests` records (path, Range header or None) of each GET; `drop_next` cuts that many
    upcoming responses after half their bytes by closing the connection.
    """

    def __init__(self, files):
        self.files, self.requests, self.drop_next = dict(files), [], 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_port}/{path.lstrip('/')}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                ranged = self.headers.get("Range")
                server.requests.append((self.path, ranged))
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                start = int(re.fullmatch(r"bytes=(\d+)-", ranged).group(1)) if ranged else 0
                if start >= len(body) and ranged:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if ranged else 200)
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                rest = body[start:]
                if server.drop_next > 0:
                    server.drop_next -= 1
                    self.wfile.write(rest[:len(rest) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        return Handler


def closed_port():
    """A localhost port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
