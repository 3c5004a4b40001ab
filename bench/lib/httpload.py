#!/usr/bin/env python3
"""A fixed number of GET requests on one keep-alive HTTP/1.1 connection, each
checked for status 200; for bench/telemetry.sh, which counts the proxy's
instructions under callgrind per request (wrk only runs for a duration).

    httpload.py HOST:PORT N [PATH]

Exits 1 at the first non-200 answer or a broken connection; prints
`N requests in S s` on success."""
import http.client
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n = int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/"
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    t0 = time.monotonic()
    for i in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            print("request %d: status %d" % (i + 1, r.status), file=sys.stderr)
            sys.exit(1)
    print("%d requests in %.1f s" % (n, time.monotonic() - t0))


if __name__ == "__main__":
    main()
