#!/usr/bin/env python3
"""Drives an interactive command through a real pseudo-terminal, the way a person would: waits for
each expected prompt text, then types the answer. Used by the CLI tests of `movim-setup init`.

Usage: pty_drive.py SCRIPT_JSON -- COMMAND ARGS...
SCRIPT_JSON is a list of [expected_text, keys_to_send] pairs. Exits with the command's status;
prints everything the command wrote to the terminal."""
import json, os, pty, select, sys, time

def main():
    sep = sys.argv.index("--")
    steps = json.loads(sys.argv[1])
    cmd = sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    transcript = b""  # everything the command wrote
    pending = b""  # what has not matched a prompt yet
    deadline = time.time() + 300

    def read_some(timeout):
        nonlocal transcript, pending
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            transcript += data
            pending += data
        return True

    for expected, keys in steps:
        while expected.encode() not in pending:
            if time.time() > deadline or not read_some(1):
                sys.stdout.write(transcript.decode(errors="replace"))
                sys.stderr.write(f"\npty_drive: never saw {expected!r}\n")
                return 97
        pending = pending.split(expected.encode(), 1)[1]
        time.sleep(0.2)
        os.write(fd, keys.encode())
    while time.time() < deadline and read_some(1):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    return os.waitstatus_to_exitcode(status)


sys.exit(main())
