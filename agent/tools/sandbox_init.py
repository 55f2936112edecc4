"""Process 1 of a sandbox: runs `/bin/sh -c COMMAND` and stays, as the namespace's reaper, until every
process the command left behind has ended (when process 1 ends, the kernel kills the rest, and
`cmd > log 2>&1 &` must keep running). Run by path with `python -I -S`: it imports nothing of hermes.

    sandbox_init.py OUTPUT_FD STATUS_FD COMMAND

The command's stdout and stderr are OUTPUT_FD; its exit code (negative: killed by that signal) is
written to STATUS_FD as one line when the shell exits. This process keeps neither descriptor open, so
the output ends when the command's processes close it, not when the sandbox ends.
"""

import os
import sys


def main() -> None:
    output, status, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    shell = os.fork()
    if shell == 0:
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.close(status)
        try:
            os.execv("/bin/sh", ["/bin/sh", "-c", command])
        finally:
            os._exit(127)
    os.close(output)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    while True:
        try:
            child, code = os.wait()
        except ChildProcessError:  # nothing left in the sandbox
            return
        if child == shell:
            os.write(status, b"%d\n" % os.waitstatus_to_exitcode(code))
            os.close(status)


if __name__ == "__main__":
    main()
