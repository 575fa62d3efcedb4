"""eunomiad: eBPF programs as a service.

Modules, each imported only when needed (a worker imports none of the HTTP stack):

* :mod:`.config` — ``DaemonConfig`` from ``eunomiad.toml`` and flags;
* :mod:`.state` — the desired programs in SQLite, package blobs by sha256;
* :mod:`.supervisor` — one worker process per program, event rings, control channel;
* :mod:`.worker` — the worker's main (``python -m eunomia_bpf.daemon.worker``);
* :mod:`.api` — the FastAPI app (``docs/daemon-api.md``);
* :mod:`.server` — uvicorn on the configured unix sockets / TCP, restore, shutdown;
* :mod:`.auth`, :mod:`.signing`, :mod:`.tls` — bearer tokens, package signatures, TLS.
"""
