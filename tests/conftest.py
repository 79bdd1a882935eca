import os

import pytest
import torch
from hypothesis import settings

from whatwhere.data import mnist

# Property tests: random examples on a workstation, the same derandomised ones in CI (CI=1), so
# that CI never meets a case nobody ran.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def mnist_test():
    """The real MNIST test split (`make test` fetches it first; the tests fail without it)."""
    try:
        return mnist.load("test")
    except mnist.MNISTError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"MNIST not available ({exc}); run `whatwhere data fetch` or `make test`")


@pytest.fixture(scope="session")
def synthetic_digits():
    """64 synthetic 28×28 'digits' (bright squares with a centred centre of mass), uint8."""
    g = torch.Generator().manual_seed(0)
    imgs = torch.zeros(64, 28, 28, dtype=torch.uint8)
    for k in range(64):
        h = 3 + int(torch.randint(0, 5, (1,), generator=g))
        imgs[k, 14 - h:15 + h, 14 - h:15 + h] = 255
    labels = torch.arange(64) % 10
    return imgs, labels


class ZooServer:
    """A folder served over HTTP on the loopback address only (127.0.0.1, a free port), in a
    thread.  ``requests`` lists the paths asked for; a file named in ``cut`` is sent with its full
    Content-Length but only its first half (a transfer broken off)."""

    def __init__(self, root):
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        self.root, self.requests, self.cut = root, [], set()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.lstrip("/")
                if name in server.cut:
                    data = (server.root / name).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def zoo_server():
    """``zoo_server(folder)``: serve ``folder`` on 127.0.0.1 (:class:`ZooServer`), stopped after the test."""
    servers = []

    def start(root):
        servers.append(ZooServer(root))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def closed_port_url():
    """An http URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
