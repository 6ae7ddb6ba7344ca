"""A real varscoped per test module, on 127.0.0.1 and a free port (the
daemon writes the port it bound), stopped with kill -9 at the end."""

import os
import signal
import subprocess
import tempfile
import time

import pytest


class Daemon:
    def __init__(self, *flags, port=0, data_dir=None):
        self.dir = tempfile.mkdtemp(prefix="varscope_py_")
        self.data_dir = data_dir
        self.flags = list(flags)
        self.port = port
        self.process = None
        self.start()

    def start(self):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        args = [os.environ["VARSCOPED"], f"--listen=127.0.0.1:{self.port}",
                f"--port_file={port_file}", "--deadlock_detection=abort"] + self.flags
        if self.data_dir:
            args.append(f"--data_dir={self.data_dir}")
        self.log = open(os.path.join(self.dir, "daemon.log"), "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the port file is written once bound
            if self.process.poll() is not None:
                raise RuntimeError(f"varscoped exited: {self.read_log()}")
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"varscoped did not start: {self.read_log()}")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def read_log(self):
        with open(os.path.join(self.dir, "daemon.log"), errors="replace") as f:
            return f.read()

    def kill(self):
        """kill -9: no shutdown, no final checkpoint."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def stop(self):
        self.kill()
        subprocess.run(["rm", "-rf", self.dir], check=False)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture
def vs(daemon):
    """The package, connected to the module's daemon with a fresh session."""
    import varscope
    client = varscope.connect(daemon.address)
    yield varscope
    client.close()
