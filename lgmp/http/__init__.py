"""See inside a running server over HTTP: Prometheus metrics, a JSON room directory and
results API, and server-rendered pages (the overview, live spectator views, results).

Built on the core's events only (``LGMPServer.watch``): ``watch.ServerWatch`` keeps
room views and counters from them, ``spectators`` fans room updates out to live
pages, ``metrics`` exports figures, ``pages``/``board``/``plots`` draw, ``api``
shapes JSON, ``app`` routes and ``service`` runs it all in the server's process
(hypercorn's trio worker).
"""
