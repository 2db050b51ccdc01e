#!/usr/bin/python3
"""ct2env.py — the project-local virtual environment of tools/ct2 (.venv-ct2).

CTranslate2 and sacreBLEU are not packaged by Debian 12.  On first use this
creates <repo>/.venv-ct2 (git-ignored) from /usr/bin/python3 with
--system-site-packages (Debian's numpy and sentencepiece stay visible) and
pip-installs the pinned versions below into it.  Later runs find them there.

As a module: ensure() re-executes the calling script on the venv's
interpreter when ctranslate2 is not importable (export.py, compare.py).
As a command:

  tools/ct2/ct2env.py            # create / complete the venv, print its python
  tools/ct2/ct2env.py --check    # only report whether it is complete (exit 0/1)

Exit status of the command: 0 ready; 1 other failure; 3 pip could not reach
the package index (network) — tests/test_ct2.sh reports that as a skip; 4
python3 -m venv is unavailable (Debian: apt-get install python3-venv).
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".venv-ct2")
VENV_PY = os.path.join(VENV, "bin", "python3")
SYSTEM_PY = "/usr/bin/python3"
# Pinned: the versions the exporter and the comparison were checked with.
PACKAGES = ["ctranslate2==4.8.5", "sacrebleu>=2.0,<3"]
PROBE = "import ctranslate2, sacrebleu, numpy; assert ctranslate2.__version__ == '4.8.5'"

# pip output that means "no network", not "no such package / wheel"
NETWORK_HINTS = ("NewConnectionError", "Failed to establish a new connection",
                 "Temporary failure in name resolution", "Name or service not known",
                 "Network is unreachable", "ProxyError", "ConnectTimeout", "ReadTimeout",
                 "Connection refused", "Max retries exceeded", "No route to host",
                 "SSLError", "timed out")


class VenvError(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def complete():
    """True when the venv exists and has the pinned packages."""
    if not os.path.exists(VENV_PY):
        return False
    return subprocess.call([VENV_PY, "-c", PROBE], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0


def create(quiet=False):
    """Creates / completes the venv; VenvError (code 3: network, 4: no venv module)."""
    def say(msg):
        if not quiet:
            print("tools/ct2: %s" % msg, file=sys.stderr)
    if complete():
        return VENV_PY
    if not os.path.exists(VENV_PY):
        say("creating %s (CTranslate2 and sacreBLEU are not in Debian 12)" % VENV)
        p = subprocess.run([SYSTEM_PY, "-m", "venv", "--system-site-packages", VENV],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise VenvError("%s -m venv failed (exit %d): %s; on Debian: apt-get install "
                            "python3-venv" % (SYSTEM_PY, p.returncode,
                                              (p.stderr or p.stdout).strip().splitlines()[-1:]),
                            4)
    say("installing %s into %s" % (" ".join(PACKAGES), VENV))
    p = subprocess.run([VENV_PY, "-m", "pip", "install", "--disable-pip-version-check",
                        "--quiet", "--timeout", "20", "--retries", "1"] + PACKAGES,
                       capture_output=True, text=True)
    out = (p.stdout or "") + (p.stderr or "")
    if p.returncode != 0:
        last = [l for l in out.strip().splitlines() if l.strip()][-1:] or ["(no output)"]
        if any(h in out for h in NETWORK_HINTS):
            raise VenvError("pip cannot reach the package index: %s" % last[0], 3)
        raise VenvError("pip install %s failed (exit %d): %s"
                        % (" ".join(PACKAGES), p.returncode, last[0]))
    if not complete():
        raise VenvError("%s still lacks a package after pip install (try removing the "
                        "directory)" % VENV)
    return VENV_PY


def ensure():
    """Makes `import ctranslate2` work for the calling script: returns when it
    already does, else re-executes the script on the venv's interpreter
    (creating the venv first).  Exits with a message on failure."""
    try:
        import ctranslate2  # noqa: F401
        import sacrebleu  # noqa: F401
        return
    except ImportError:
        pass
    if in_venv():
        print("tools/ct2: ctranslate2/sacrebleu missing from %s; remove that directory and "
              "rerun (it is recreated)" % VENV, file=sys.stderr)
        sys.exit(1)
    try:
        py = create()
    except VenvError as e:
        print("tools/ct2: error: %s" % e, file=sys.stderr)
        sys.exit(1)
    script = os.path.abspath(sys.argv[0])
    os.execv(py, [py, script] + sys.argv[1:])


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        return 0 if complete() else 1
    if len(sys.argv) > 1:
        print("ct2env.py: unknown argument %s (try --help)" % sys.argv[1], file=sys.stderr)
        return 2
    try:
        print(create())
    except VenvError as e:
        print("tools/ct2: error: %s" % e, file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
