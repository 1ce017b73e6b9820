"""The check runner the Python client tests share: each check prints PASS or FAIL (with a short
traceback), the last line is "N passed, M failed", and the exit status is 1 on any failure."""

import traceback


def run_checks(checks, *args):
    """Runs every check with `args`; returns the process exit status."""
    passed = failed = 0
    for function in checks:
        try:
            function(*args)
            print(f"PASS {function.__name__}")
            passed += 1
        except Exception:  # report every failure, then go on
            print(f"FAIL {function.__name__}")
            traceback.print_exc(limit=3)
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
