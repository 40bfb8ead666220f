"""What kube-proxy's own health server answers, byte for byte as its Go server writes it.

kube-proxy listens on every node on ``healthzBindAddress`` (0.0.0.0:10256)
with a Go ``http.ServeMux`` of two exact paths (pkg/proxy/healthcheck,
proxy_health.go; proxier_health.go before 1.31):

- ``/healthz`` (what cloud load balancers ask, KEP-3836): ``200 OK`` while
  kube-proxy is synced and its node is eligible (not being deleted, not
  tainted ``ToBeDeletedByClusterAutoscaler``), else ``503``; the body, one
  line with no final newline (cut here)::

    {"lastUpdated": "2026-12-07 04:05:06.123456789 +0000 UTC m=+12.345678901",
    "currentTime": "2026-12-07 04:05:06.123456789 +0000 UTC m=+12.345678901", "nodeEligible": true}

  where, healthy, ``lastUpdated`` is the current time too (kept so for older
  clients);
- ``/livez`` (since 1.28): the same without ``nodeEligible``, its status not
  depending on the node;
- any other path: the mux's ``404 page not found`` (http.NotFound), a query
  string aside (``/healthz?x`` is ``/healthz``; ``/healthz/`` is not).

Headers: the handler's ``Content-Type: application/json`` and
``X-Content-Type-Options: nosniff`` (http.Error's ``text/plain; charset=utf-8``
and ``nosniff`` for a 404), then the server's ``Date`` and ``Content-Length``;
this server answers one request a connection, so it says ``Connection: close``
before them as Go does for a client that asks it. Any method gets the
handler's answer (it looks at none); ``HEAD`` gets the headers alone.

The times are Go's ``time.Time.String()`` of ``time.Now()`` (the ``%q`` of a
Stringer): the wall clock in the process' zone (kube-proxy's container runs in
UTC) with nanoseconds, trailing zeros cut, then the monotonic reading, seconds
since the process started (Go's runtime start: here, this module's import in
the echo server). A lab's kube-proxy is always synced and its nodes are never
tainted, so it is always healthy here: 200 on both paths.
"""

from __future__ import annotations

import time

STARTED_NS = time.monotonic_ns()  # the process' start, for Go's monotonic reading
STATUS_TEXT = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
NOT_FOUND = b"404 page not found\n"


def go_time(wall_ns: int, mono_ns: int) -> str:
    """Go's Time.String() of a UTC time with a monotonic reading: ``2006-01-02 15:04:05.999999999 +0000 UTC
    m=+1.000000001`` (the fraction without its trailing zeros, none at all when zero)."""
    secs, nanos = divmod(wall_ns, 1_000_000_000)
    t = time.gmtime(secs)
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    sign = "+" if mono_ns >= 0 else "-"
    m_secs, m_nanos = divmod(abs(mono_ns), 1_000_000_000)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}{frac} "
            f"+0000 UTC m={sign}{m_secs}.{m_nanos:09d}")


def path_of(head: bytes) -> str:
    """The path of an HTTP request's target (its first line's second word), without the query; an absolute
    target (``http://host/healthz``) by its path."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ")
    target = parts[1].decode("latin-1") if len(parts) >= 3 else "/"
    if "://" in target:
        rest = target.split("://", 1)[1]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return target.split("?", 1)[0].split("#", 1)[0]


def answer(head: bytes, date: str, wall_ns: int | None = None, mono_ns: int | None = None) -> bytes:
    """kube-proxy's answer to the request whose head is ``head`` (``date``: the Date header's value), healthy and
    its node eligible: a lab's kube-proxy is synced at each ``up`` and a lab's nodes are never tainted."""
    wall = time.time_ns() if wall_ns is None else wall_ns
    mono = time.monotonic_ns() - STARTED_NS if mono_ns is None else mono_ns
    now = go_time(wall, mono)
    path = path_of(head)
    if path == "/healthz":
        status, body = 200, f'{{"lastUpdated": "{now}","currentTime": "{now}", "nodeEligible": true}}'.encode()
        ctype = "application/json"
    elif path == "/livez":
        status, body = 200, f'{{"lastUpdated": "{now}","currentTime": "{now}"}}'.encode()
        ctype = "application/json"
    else:
        status, body, ctype = 404, NOT_FOUND, "text/plain; charset=utf-8"
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT[status]}", f"Content-Type: {ctype}", "X-Content-Type-Options: nosniff",
             "Connection: close", f"Date: {date}", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + (b"" if head.startswith(b"HEAD ") else body)
