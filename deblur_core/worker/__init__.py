"""The process GIMP's plug-ins talk to: ``<venv python> -m deblur_core.worker`` (cwd / PYTHONPATH = repo
root). One request per connection: stdin / stdout, or a standby worker's Unix socket; cancel = the
plug-in kills the process.

protocol.py   the wire format (request line, pixel bytes, answer lines and buffers) and option checking
serve.py      answering a request with the engine (ping, analyze, deblur) and ``main()``
standby.py    the standby worker's lifecycle: a Unix socket, one client at a time, when to leave
"""
from .protocol import DTYPES, MAX_PIXELS, PROTOCOL_VERSION, Channel, ProtocolError, deblur_kwargs
from .serve import main, serve, serve_guarded, standby
from .standby import MAX_IDLE_RSS_MB, MAX_REQUESTS

_deblur_kwargs = deblur_kwargs  # the name tests/test_spatial.py imports

__all__ = ["DTYPES", "MAX_PIXELS", "PROTOCOL_VERSION", "Channel", "ProtocolError", "deblur_kwargs", "main",
           "serve", "serve_guarded", "standby", "MAX_IDLE_RSS_MB", "MAX_REQUESTS"]
